/**
 * Hypotheses declared in a sweep file, answered on hand-built records whose effects are set by
 * construction: lora beats frozen by 20 points, quantization moves accuracy by ±0.1 point, rank 16
 * adds 3 points, and more data helps by +5, -3 or +1 points depending on the seed (mean +1, an
 * interval from -0.7 to 2.7 computed by hand below).
 */
import assert from "node:assert/strict";
import { analyzeStudy } from "./analysis.ts";
import { buildStudies } from "./data.ts";
import { answerHypothesis, type HypothesisAnswer, pairedLevelDiffs } from "./hypotheses.ts";
import { renderReport } from "./site.ts";
import { fixtureConfig, fixtureRecord, HYPOTHESIS_SWEEP, hypothesisStudy } from "./testing.ts";
import { parseSweep } from "../bench/sweep_plan.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunRecord } from "../bench/record.ts";
import { InputError } from "../models/util/args.ts";

async function answers(hypotheses: unknown[], margin?: number): Promise<HypothesisAnswer[]> {
  const { records, sweep } = await hypothesisStudy(hypotheses);
  const [study] = buildStudies(records, { sweep });
  return analyzeStudy(study, { resamples: 20, margin }).hypotheses;
}

/**
 * An answer never disagrees with the intervals it rests on: supported equivalence has every TOST
 * interval inside ±m, contradicted equivalence one wholly outside; a supported or contradicted
 * direction has a t interval that excludes 0 on the side it says.
 */
function assertConsistent(a: HypothesisAnswer): void {
  const m = a.margin;
  const cs = a.comparisons.filter((c) => c.judgement.kind !== "not testable");
  const eq = cs.map((c) => c.judgement.equivalence!.ci);
  const t = cs.map((c) => c.judgement.ci!);
  const claim = a.hypothesis.claim;
  if (claim === "equivalent" || claim === "no effect") {
    if (a.answer === "supported") assert.ok(eq.every((i) => i.lo > -m && i.hi < m), a.reason);
    if (a.answer === "contradicted") assert.ok(eq.some((i) => i.lo > m || i.hi < -m), a.reason);
    if (a.answer === "inconclusive") {
      assert.ok(!eq.some((i) => i.lo > m || i.hi < -m), a.reason);
    }
  } else if (claim === "better" || claim === "worse") {
    // Accuracy, higher is better: the claim is about the sign of first level - second level.
    const up = claim === "better";
    if (a.answer === "supported") assert.ok(up ? t[0].lo > 0 : t[0].hi < 0, a.reason);
    if (a.answer === "contradicted") assert.ok(up ? t[0].hi < 0 : t[0].lo > 0, a.reason);
    if (a.answer === "inconclusive") assert.ok(t[0].lo <= 0 && t[0].hi >= 0, a.reason);
  } else {
    // Each step up (higher level - lower level).
    const up = claim === "increases";
    if (a.answer === "supported") assert.ok(t.every((i) => (up ? i.lo > 0 : i.hi < 0)), a.reason);
    if (a.answer === "contradicted") assert.ok(t.some((i) => (up ? i.hi < 0 : i.lo > 0)), a.reason);
    if (a.answer === "inconclusive") assert.ok(!t.some((i) => (up ? i.hi < 0 : i.lo > 0)), a.reason);
  }
}

Deno.test("hypotheses: known effects give supported, contradicted and inconclusive answers", async () => {
  const got = await answers([
    { factor: "method", compare: ["lora", "frozen"], claim: "better", name: "adapting beats the baseline" },
    { factor: "method", compare: ["lora", "frozen"], claim: "worse" },
    { factor: "quant", compare: ["none", "nf4+dq"], claim: "equivalent", margin: 0.01 },
    { factor: "rank", claim: "no effect" },
    { factor: "rank", claim: "increases" },
    { factor: "rank", claim: "decreases" },
    { factor: "train-per-class", claim: "increases" },
    { factor: "train-per-class", claim: "no effect", margin: 0.005 },
    { factor: "quant", compare: ["nf4+dq", "none"], claim: "better" },
    { factor: "quant", claim: "no effect" },
  ]);
  assert.deepEqual(got.map((a) => a.answer), [
    "supported", // +20 points in every pair
    "contradicted",
    "supported", // ±0.1 point against a 1-point margin
    "contradicted", // +3 points, interval far beyond the 1-point default margin
    "supported",
    "contradicted",
    "inconclusive", // +5, -3, +1 by seed: the interval includes 0
    "inconclusive", // and reaches beyond ±0.5
    "inconclusive", // no direction shown, but equivalent within ±1
    "supported",
  ]);
  got.forEach(assertConsistent);
  // lora vs frozen: frozen has no rank, so lora's two ranks are averaged per (quant, data, seed) cell:
  // 2 x 2 x 3 = 12 pairs, each lora - frozen = 20 + 1.5 (rank 16's 3 points, halved) + tiny terms.
  assert.equal(got[0].comparisons[0].n, 12);
  assert.match(
    got[0].reason,
    /^lora − frozen \+21\.5 accuracy points \(95% CI \[21\.\d, 21\.\d\], paired t over 12 matched pairs, p < 0\.001\): lora is better/,
  );
  assert.match(got[0].statement, /^method lora is better than frozen \(accuracy, higher is better\)$/);
  // Quantization pairs: (frozen + lora at 2 ranks) x 2 data sizes x 3 seeds = 6 + 12 = 18.
  assert.equal(got[2].comparisons[0].n, 18);
  assert.match(got[2].reason, /90% CI \[-?0\.\d, 0\.\d\] over 18 matched pairs, TOST p < 0\.001/);
  assert.equal(got[2].margin, 1); // 0.01 in accuracy's own unit = 1 point
  assert.match(got[3].reason, /exceeds the margin ±1\.0 accuracy points: 4 − 16 -3\.0/);
  // Data: 18 pairs (frozen 2 quant x 3 seeds + lora 2 x 2 x 3), 6 each of +5, -3, +1 points.
  // mean 1, SS = 6*16 + 6*16 + 0 = 192, s = sqrt(192/17), se = s/sqrt(18) = 0.79212;
  // t(0.975, 17) = 2.109816 (Student's t table), so the 95% CI is 1 ± 1.6712 = [-0.67, 2.67].
  const data = got[6].comparisons[0];
  assert.equal(data.n, 18);
  assert.ok(Math.abs(data.judgement.ci!.lo - (1 - 2.109816 * Math.sqrt(192 / 17 / 18))) < 1e-4);
  assert.match(
    got[6].reason,
    /^no rise shown at 8 → 32 \+1\.0 accuracy points \(95% CI \[-0\.7, 2\.7\], paired t over 18/,
  );
  assert.match(got[8].reason, /neither is shown better; the two are equivalent within ±1\.0 accuracy points/);
  // Every answer cites the factorial model's main effect of its factor (the sweep's names), except
  // method: frozen is the only method at rank n/a, so type II leaves method no df of its own.
  assert.match(got[0].reason, /no main-effect test of method: its levels coincide with another factor's/);
  for (const a of got.filter((a) => a.hypothesis.factor !== "method")) {
    assert.match(
      a.reason,
      new RegExp(
        `Factorial model over the design: ${a.hypothesis.factor.replace(/[+]/g, "\\+")} F\\(1, \\d+\\)`,
      ),
    );
  }
});

Deno.test("hypotheses: matched pairs follow the sweep's levels; a factor one level lacks is averaged over", async () => {
  const { records, sweep } = await hypothesisStudy([]);
  const [study] = buildStudies(records, { sweep });
  // rank 16 - rank 4 among lora runs only (frozen's rank is n/a): 2 quant x 2 data x 3 seeds.
  const rank = pairedLevelDiffs(study, "rank", "16", "4");
  assert.equal(rank.length, 12);
  assert.deepEqual(
    rank.map((d) => Number(d.toFixed(6))).sort(),
    [...Array(4).fill(2.8), ...Array(4).fill(3), ...Array(4).fill(3.2)].sort(),
  );
  const method = pairedLevelDiffs(study, "method", "lora", "frozen");
  assert.equal(method.length, 12);
  assert.ok(method.every((d) => Math.abs(d - 21.5) < 0.2 + 1e-9), String(method));
  assert.deepEqual(pairedLevelDiffs(study, "method", "lora", "nope"), []);
});

Deno.test("hypotheses: steps over three levels, an order given by compare, and a lower-is-better metric", async () => {
  const spec = parseSweep({
    fixed: { dataset: "wordnet-lex", task: "lm" },
    factors: { rank: [4, 8, 16], seed: [0, 1, 2, 3] },
    hypotheses: [
      { factor: "rank", claim: "decreases" },
      { factor: "rank", compare: [16, 4], claim: "increases" },
      { factor: "rank", compare: ["4", "8"], claim: "better" },
      { factor: "rank", compare: [8, 16], claim: "increases" },
    ],
  }, "lm.json");
  const records: RunRecord[] = [];
  const byRun = new Map<string, Record<string, string>>();
  // Perplexity falls by 5 from rank 4 to 8 (±0.1 by seed), then moves by +2, -2, +1, -1 (no shown step).
  const ppl = (rank: number, seed: number) =>
    30 - (rank >= 8 ? 5 + 0.1 * (seed % 2 ? 1 : -1) : 0) + (rank === 16 ? [2, -2, 1, -1][seed] : 0);
  for (const rank of [4, 8, 16]) {
    for (const seed of [0, 1, 2, 3]) {
      const config = fixtureConfig({ task: "lm", methodOptions: { targets: "q+v", rank, alpha: 16 }, seed });
      const r = await fixtureRecord(config, new Rng(seed + 10 * rank), 4, 2);
      r.metrics = { perplexity: ppl(rank, seed) };
      records.push(r);
      byRun.set(r.runId, { rank: String(rank), seed: String(seed) });
    }
  }
  const [study] = buildStudies(records, {
    sweep: { source: "lm.json", factors: ["rank", "seed"], byRun, hypotheses: spec.hypotheses },
  });
  assert.equal(study.metric.name, "perplexity");
  const got = analyzeStudy(study, { resamples: 20 }).hypotheses;
  assert.deepEqual(got.map((a) => a.answer), [
    "inconclusive", // falls 4 -> 8, no fall shown 8 -> 16
    "supported", // 16 -> 4 in the author's order (one step): perplexity rises by 5
    "contradicted", // rank 4 has the higher perplexity: 8 is better
    "inconclusive",
  ]);
  assert.deepEqual(got[0].comparisons.map((c) => [c.b, c.a]), [["4", "8"], ["8", "16"]]);
  assert.match(
    got[0].reason,
    /no fall shown at 8 → 16 .*Bonferroni over 2.*perplexity falls at 4 → 8 -5\.00 perplexity/,
  );
  assert.match(got[2].reason, /: 8 is better/);
  assert.match(got[2].statement, /lower is better/);
});

Deno.test("hypotheses: without sweep names or with a margin in the wrong unit", async () => {
  const { records, sweep } = await hypothesisStudy([{ factor: "rank", claim: "no effect" }]);
  // A run the plan does not have: the sweep's names do not apply, and the answer says why.
  const stray = await fixtureRecord(fixtureConfig({ dataset: "wordnet-lex", lr: 0.5 }), new Rng(9), 4, 2);
  stray.metrics.accuracy = 0.5;
  const [study] = buildStudies([...records, stray], { sweep });
  const [a] = analyzeStudy(study, { resamples: 20 }).hypotheses;
  assert.equal(a.answer, "inconclusive");
  assert.match(a.reason, /^not tested: some runs are not in the plan of hand\.json/);
  const [ok] = buildStudies(records, { sweep });
  const h =
    parseSweep({ ...HYPOTHESIS_SWEEP, hypotheses: [{ factor: "quant", claim: "no effect", margin: 1 }] })
      .hypotheses[0];
  assert.throws(
    () => answerHypothesis(ok, h, { margin: 1 }),
    (e: Error) =>
      e instanceof InputError &&
      /hypotheses\[0\] \(quant no effect\): margin 1 is in accuracy's own unit \(0\.01 = 1 point\)/.test(
        e.message,
      ),
  );
});

Deno.test("hypotheses: answered in the findings of index.html and REPORT.md", async () => {
  const { records, sweep } = await hypothesisStudy([
    {
      factor: "quant",
      compare: ["none", "nf4+dq"],
      claim: "equivalent",
      margin: 0.01,
      name: "QLoRA loses nothing",
    },
    { factor: "train-per-class", claim: "increases" },
  ]);
  const files = await renderReport(records, { resamples: 20, sweep });
  const md = files.find((f) => f.path === "REPORT.md")!.text;
  const findings = md.slice(md.indexOf("## Findings"), md.indexOf("\n## classify on"));
  assert.match(
    findings,
    /Hypotheses declared in the sweep file:\n\n1\. \*QLoRA loses nothing\*: quant none and nf4\+dq are equivalent within ±1\.0 accuracy points — \*\*supported\*\*: the interval lies inside/,
  );
  assert.match(
    findings,
    /\n2\. accuracy increases with train-per-class \(8 → 32\) — \*\*inconclusive\*\*: no rise shown/,
  );
  assert.doesNotMatch(md, /&#?[A-Za-z0-9]+;/, "no HTML entities");
  const html = files.find((f) => f.path === "index.html")!.text;
  assert.match(
    html,
    /<ol class="hypotheses"><li value="1" data-answer="supported"><em>QLoRA loses nothing<\/em>: /,
  );
  assert.match(html, /<strong class="answer answer-inconclusive">inconclusive<\/strong>/);
});
