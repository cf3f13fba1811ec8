import assert from "node:assert/strict";
import { analyzeStudy } from "./analysis.ts";
import { buildStudies } from "./data.ts";
import { syntheticRecords } from "./testing.ts";

const recs = await syntheticRecords({
  ranks: [4, 16],
  quants: ["nf4", "fp4"],
  trainSizes: [64],
  seeds: 4,
  items: 30,
});
const studies = buildStudies(recs);
const byTask = (t: string) => studies.find((s) => s.task === t)!;

Deno.test("factor analysis finds the fixture's real effects and matches runs", () => {
  const s = byTask("classify");
  const a = analyzeStudy(s, { resamples: 300 });
  assert.deepEqual(a.factors.map((f) => f.factor), ["method", "targets", "rank", "quant"]);
  const quant = a.factors.find((f) => f.factor === "quant")!;
  // nf4 beats fp4 by 2.5 points in the fixture model; seed noise is 1.2 points.
  const pair = quant.pairs[0];
  assert.equal(pair.a, "nf4");
  assert.ok(pair.diff > 1.5 && pair.diff < 3.5, `diff ${pair.diff}`);
  assert.equal(pair.better, "nf4");
  assert.ok(pair.wilcoxon.ok && pair.wilcoxon.value.pAdjusted < 0.05);
  assert.ok(pair.ci.ok && pair.ci.value.lo > 0);
  assert.equal(pair.judgement.kind, "better");
  assert.ok(quant.kruskal.ok && quant.kruskal.value.p < 0.05);
  assert.match(pair.verdict, /quant nf4 vs fp4: \+\d\.\d accuracy points/);
  // Rank applies only to lora/dora: ia3 runs are left out, never matched as "n/a".
  const rank = a.factors.find((f) => f.factor === "rank")!;
  assert.deepEqual(rank.levels, ["4", "16"]);
  assert.ok(Number.isFinite(a.seedSd) && a.seedSd > 0.5 && a.seedSd < 2.5, `seedSd ${a.seedSd}`);
  assert.ok(a.notes.some((n) => n.includes("1 failed run")));
});

Deno.test("lower-is-better metric: the level with lower perplexity is called better", () => {
  const a = analyzeStudy(byTask("lm"), { resamples: 200 });
  const pair = a.factors.find((f) => f.factor === "quant")!.pairs[0];
  assert.ok(pair.diff < 0, "nf4 has lower perplexity than fp4");
  if (pair.judgement.kind === "better" || pair.judgement.kind === "worse") assert.equal(pair.better, "nf4");
});

Deno.test("verdicts agree with their intervals: better only when the CI excludes 0", () => {
  const a = analyzeStudy(byTask("classify"), { resamples: 200 });
  for (const f of a.factors) {
    for (const p of f.pairs) {
      const j = p.judgement;
      const excludes0 = j.ci !== undefined && (j.ci.lo > 0 || j.ci.hi < 0);
      assert.equal(p.better !== null, excludes0, p.verdict);
      assert.doesNotMatch(p.verdict, /noise/);
    }
  }
  const method = a.factors.find((f) => f.factor === "method")!;
  // ia3 shares no targets/rank setting with lora: no matched runs, said so, no winner.
  const ia3 = method.pairs.find((p) => p.b === "ia3")!;
  assert.equal(ia3.n, 0);
  assert.equal(ia3.better, null);
  assert.match(ia3.verdict, /no matched runs/);
});

Deno.test("retrieval studies get ranx-style superscripts from per-query scores", () => {
  const a = analyzeStudy(byTask("retrieve"), { permutations: 5000 });
  assert.ok(a.superscripts && a.superscripts.ok);
  const sup = a.superscripts.value;
  assert.equal(sup.queries, 30);
  assert.equal(sup.byConfig.size, byTask("retrieve").groups.length);
  const best = sup.byConfig.get(byTask("retrieve").groups[0].key)!;
  assert.equal(best.letter, "a");
  // With 5000 permutations the smallest p is 2e-4; Holm over 153 pairs still leaves < 0.05.
  assert.ok(best.beats.length > 0, "the best configuration beats some other");
  const worst = sup.byConfig.get(byTask("retrieve").groups.at(-1)!.key)!;
  assert.deepEqual(worst.beats, []);
  assert.equal(analyzeStudy(byTask("classify"), { resamples: 50 }).superscripts, null);
});

Deno.test("a study with one configuration reports notes instead of throwing", async () => {
  const one = await syntheticRecords({
    tasks: ["lm"],
    rankedMethods: ["lora"],
    unrankedMethods: [],
    targets: ["qv"],
    ranks: [4],
    quants: ["none"],
    trainSizes: [64],
    seeds: 1,
    failures: 0,
  });
  const a = analyzeStudy(buildStudies(one)[0]);
  assert.equal(a.factors.length, 0);
  assert.ok(a.notes.some((n) => n.includes("seed noise cannot be estimated")));
  assert.ok(a.notes.some((n) => n.includes("nothing to compare")));
});

Deno.test("one type II model over the whole design replaces two-way ANOVAs on slices", () => {
  const s = byTask("classify");
  const a = analyzeStudy(s, { resamples: 100 });
  assert.ok(a.design?.ok, a.design && !a.design.ok ? a.design.reason : "no design");
  const d = a.design.value;
  assert.deepEqual(d.factors, ["method", "targets", "rank", "quant"]);
  // Every analysed run is in the one model (no slice), 4 main effects + 6 pairs.
  assert.equal(d.n, s.ok.length);
  assert.equal(d.parametric.length, 10);
  assert.equal(d.ssType, "II");
  // ia3 has no targets or rank: those levels coincide with method ia3, so method loses that df.
  assert.ok(d.aliased.includes("method"), d.aliased.join(","));
  // The fixture's nf4-vs-fp4 effect (2.5 points against 1.2 noise) is found by the model.
  const quant = (d.used === "parametric" ? d.parametric : d.art!).find((e) => e.name === "quant")!;
  assert.equal(quant.df, 1);
  assert.ok(quant.p < 0.05 && quant.partialEtaSquared > 0 && quant.partialEtaSquared < 1, `${quant.p}`);
  assert.ok(d.normality.ok, "enough residuals for the normality check");
});

Deno.test("rank 4 vs 16 on the fixture (alpha = 2 x rank) is matched and finds the model's 4-point gain", () => {
  const a = analyzeStudy(byTask("classify"), { resamples: 200 });
  const rank = a.factors.find((f) => f.factor === "rank")!;
  const pair = rank.pairs[0];
  // Before: alpha (8 at rank 4, 32 at rank 16) was part of the held-fixed settings: 0 pairs.
  // lora and dora x 2 targets x 2 quants x 1 train size x 4 seeds.
  assert.equal(pair.n, 2 * 2 * 2 * 4);
  // The fixture's model: 0.02 log2(r / 4) = 4 points from rank 4 to 16; seed noise 1.2 points per run.
  assert.ok(Math.abs(pair.diff - -4) < 1, `diff ${pair.diff}`);
  assert.equal(pair.better, "16");
  assert.deepEqual(rank.bound.map((b) => [b.method, b.option, b.values]), [
    ["lora", "alpha", [[4, 8], [16, 32]]],
    ["dora", "alpha", [[4, 8], [16, 32]]],
  ]);
  assert.ok(
    a.notes.some((n) => n.startsWith("alpha of lora follows rank (8 at 4, 32 at 16)")),
    a.notes.join("\n"),
  );
});

Deno.test("an alpha crossed with rank stays a setting of its own: rank is compared at equal alpha", async () => {
  const { fixtureConfig, fixtureRecord } = await import("./testing.ts");
  const { Rng } = await import("../models/util/rng.ts");
  const runs = [];
  for (const rank of [4, 16]) {
    for (const alpha of [8, 32]) {
      for (const seed of [0, 1, 2]) {
        const r = await fixtureRecord(
          fixtureConfig({ methodOptions: { targets: "qv", rank, alpha }, seed }),
          new Rng(seed),
          4,
          2,
        );
        // Rank 16 adds 4 points, alpha 32 adds 10: pairing across alphas would show 6 or 14.
        r.metrics.accuracy = 0.5 + (rank === 16 ? 0.04 : 0) + (alpha === 32 ? 0.1 : 0) + 0.003 * seed * seed;
        runs.push(r);
      }
    }
  }
  const a = analyzeStudy(buildStudies(runs)[0], { resamples: 100 });
  const rank = a.factors.find((f) => f.factor === "rank")!;
  assert.deepEqual(rank.bound, []);
  assert.equal(rank.pairs[0].n, 2 * 3);
  assert.ok(Math.abs(rank.pairs[0].diff - -4) < 1e-9, `diff ${rank.pairs[0].diff}`);
});
