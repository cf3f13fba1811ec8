/**
 * The questions a study asks of its report (issue 17): the frozen baseline compared with every
 * method, trivial baselines and collapsed runs, findings first, paste-ready Markdown.
 */
import assert from "node:assert/strict";
import { analyzeStudy } from "./analysis.ts";
import { buildStudies } from "./data.ts";
import { renderReport } from "./site.ts";
import { fixtureConfig, fixtureRecord, syntheticRecords } from "./testing.ts";
import { studyFindings } from "./findings.ts";
import { collapsed, trivialScores } from "./trivial.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunConfig, RunRecord } from "../bench/record.ts";

/** Test labels of 10 items: 4 world, 3 sports, 2 business, 1 science. */
const TRUE = [
  "world",
  "world",
  "world",
  "world",
  "sports",
  "sports",
  "sports",
  "business",
  "business",
  "science",
];

/** A classification record with per-item labels and predictions, accuracy set to `acc`. */
async function run(over: Partial<RunConfig>, acc: number, preds: string[] = TRUE): Promise<RunRecord> {
  const config = fixtureConfig({ dataset: "news_ru", ...over });
  const r = await fixtureRecord(config, new Rng(config.seed).fork(JSON.stringify(over)), 10, 4);
  r.metrics.accuracy = acc;
  r.perItem = TRUE.map((label, i) => ({
    id: `ex-${i}`,
    label,
    pred: preds[i],
    correct: label === preds[i] ? 1 : 0,
  }));
  return r;
}

/** frozen (no rank/targets) and lora at ranks 4 and 16, quant none and nf4+dq, 3 seeds. */
async function study(): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const seed of [0, 1, 2]) {
    out.push(
      await run({ method: "frozen", methodOptions: {}, seed }, 0.30 + 0.01 * seed, Array(10).fill("world")),
    );
    for (const rank of [4, 16]) {
      for (const dq of [false, true]) {
        const quant = dq ? { scheme: "nf4", doubleQuant: true } : { scheme: "none" };
        const acc = 0.55 + 0.01 * seed + (rank === 16 ? 0.04 : 0) +
          0.002 * (seed % 2 ? 1 : -1) * (dq ? 1 : 0);
        out.push(await run({ methodOptions: { targets: "qv", rank, alpha: 16 }, quant, seed }, acc));
      }
    }
  }
  return out;
}

Deno.test("the frozen baseline is compared with every method configuration and within the method factor", async () => {
  const [s] = buildStudies(await study());
  const a = analyzeStudy(s, { resamples: 100 });
  const method = a.factors.find((f) => f.factor === "method")!;
  const pair = method.pairs.find((p) => p.b === "lora" || p.a === "lora")!;
  // Before: "method frozen vs lora: no matched runs" (frozen has no rank or targets).
  assert.ok(pair.n >= 3, `matched ${pair.n}`);
  assert.equal(pair.better, "lora");
  assert.doesNotMatch(pair.verdict, /no matched runs/);
  const vsFrozen = a.baselines.find((b) => b.baseline === "frozen")!;
  assert.equal(vsFrozen.rows.length, 4, "every lora configuration, nf4 ones included");
  for (const row of vsFrozen.rows) {
    assert.equal(row.n, 3, row.config);
    assert.equal(row.judgement.kind, "better", row.judgement.text);
  }
});

Deno.test("majority-class and chance scores, and runs collapsed onto one class", async () => {
  const r = await run({}, 0.5);
  const t = trivialScores(r)!;
  assert.equal(t.items, 10);
  assert.equal(t.classes, 4);
  assert.equal(t.majorityLabel, "world");
  assert.equal(t.majorityAccuracy, 0.4);
  // Closed form: F1 of the majority class 2p/(1+p) = 0.8/1.4, the other three 0, over K = 4.
  assert.ok(Math.abs(t.majorityMacroF1 - (0.8 / 1.4) / 4) < 1e-12);
  assert.equal(t.chanceAccuracy, 0.25);
  assert.deepEqual(collapsed(await run({}, 0.4, [...Array(9).fill("world"), "sports"])), {
    label: "world",
    share: 0.9,
  });
  assert.equal(collapsed(await run({}, 0.4, [...Array(8).fill("world"), "sports", "science"])), null);
  const [s] = buildStudies(await study());
  const summary = analyzeStudy(s, { resamples: 50 }).trivial!;
  assert.deepEqual(summary.collapsed.map((c) => c.name), [
    "frozen n64 seed0",
    "frozen n64 seed1",
    "frozen n64 seed2",
  ]);
  assert.deepEqual(summary.atOrBelowMajority, ["frozen n64"]);
});

Deno.test("REPORT.md opens with findings, shows baselines and flags, and is paste-ready", async () => {
  const files = await renderReport(await study(), { resamples: 50 });
  const md = files.find((f) => f.path === "REPORT.md")!.text;
  const findings = md.indexOf("## Findings");
  assert.ok(findings > 0 && findings < md.indexOf("## classify on news_ru"), "findings come first");
  assert.match(md, /majority class \('world'\) scores accuracy 0\.400 and macro-F1 0\.143/);
  assert.match(md, /3 of 15 runs put 90% or more of their predictions in one class/);
  assert.match(md, /Against frozen \(4 configurations\): 4 better\./);
  assert.match(md, /#### Every configuration vs frozen/);
  assert.match(md, /collapsed: 3\/3 runs predict one class \(up to 100% 'world'\)/);
  // Paste-ready: no HTML entities, no escaped underscores in words, no "p = <0.001".
  assert.doesNotMatch(md, /&#?[A-Za-z0-9]+;/, "no HTML entities");
  assert.ok(md.includes("news_ru") && !md.includes("news\\_ru"));
  assert.ok(md.includes("Cliff's"));
  assert.doesNotMatch(md, /p = </);
  const index = files.find((f) => f.path === "index.html")!.text;
  assert.ok(index.indexOf('id="findings"') < index.indexOf('id="study-'), "findings first on the site too");
});

Deno.test("retrieval studies state the random-ranking baseline in closed form", async () => {
  const recs = await syntheticRecords({
    tasks: ["retrieve"],
    ranks: [4],
    quants: ["none"],
    seeds: 2,
    items: 20,
  });
  for (const r of recs) r.details = { ...r.details, corpusSize: 200 };
  const study = buildStudies(recs)[0];
  const a = analyzeStudy(study, { resamples: 20, permutations: 20 });
  assert.ok(a.randomRanking);
  let h = 0;
  for (let i = 1; i <= 200; i++) h += 1 / i;
  assert.ok(Math.abs(a.randomRanking.scores.mrr - h / 200) < 1e-12, "E[RR] = H_N / N with one relevant");
  assert.equal(a.randomRanking.assumedOneRelevant, true);
  const lines = studyFindings(study, a).lines.join("\n");
  assert.match(lines, /random ranking of the 200-document corpus is expected to score mrr 2\.94%/);
  assert.match(lines, /assuming one relevant document per query/);
});
