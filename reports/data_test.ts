import assert from "node:assert/strict";
import { buildStudies, configKey, factorsOf, perItemScores, primaryMetric, reportMetric } from "./data.ts";
import { fixtureConfig, syntheticRecords } from "./testing.ts";

Deno.test("primary metric per task, with direction", () => {
  assert.equal(primaryMetric("classify").name, "accuracy");
  assert.equal(primaryMetric("retrieve", ["mrr", "ndcg@10"]).name, "mrr");
  assert.equal(primaryMetric("retrieve", ["ndcg@10"]).name, "ndcg@10");
  const lm = primaryMetric("lm");
  assert.equal(lm.name, "perplexity");
  assert.equal(lm.direction, "lower");
  assert.equal(reportMetric("bitsPerByte").direction, "lower");
  assert.equal(reportMetric("macroF1").direction, "higher");
  assert.equal(primaryMetric("classify", ["accuracy", "macroF1"], ["macroF1", "macroF1"]).name, "macroF1");
});

Deno.test("factorsOf reads targets, rank, quant and train size; configKey ignores the seed", () => {
  const c = fixtureConfig({
    methodOptions: { targets: ["q", "v"], rank: 8 },
    quant: { scheme: "nf4", doubleQuant: true },
  });
  assert.deepEqual(factorsOf(c), { method: "lora", targets: "q,v", rank: 8, quant: "nf4+dq", trainSize: 64 });
  assert.equal(factorsOf(fixtureConfig({ method: "ia3", methodOptions: {} })).rank, null);
  assert.equal(factorsOf(fixtureConfig({ trainPerClass: 8 })).trainSize, "8/class");
  assert.equal(configKey({ ...c, seed: 1 }), configKey({ ...c, seed: 2 }));
  assert.notEqual(configKey(c), configKey({ ...c, lr: 5e-4 }));
});

Deno.test("buildStudies splits by task, groups seeds, keeps failed runs out of ok, sorts by direction", async () => {
  const recs = await syntheticRecords({ ranks: [4], quants: ["none"], trainSizes: [64], seeds: 3, items: 5 });
  const studies = buildStudies(recs);
  assert.deepEqual(studies.map((s) => s.task), ["classify", "lm", "retrieve"]);
  for (const s of studies) {
    assert.equal(s.failed.length, 1);
    assert.ok(s.ok.every((r) => r.status === "success"));
    assert.ok(s.groups.every((g) => g.runs.length === 3 && g.primary.n === 3));
    const means = s.groups.map((g) => g.primary.mean);
    const sorted = [...means].sort((a, b) => s.metric.direction === "higher" ? b - a : a - b);
    assert.deepEqual(means, sorted, `${s.task} best first`);
    assert.deepEqual(s.varying, ["method", "targets", "rank"].filter((f) => f !== "rank"));
  }
});

Deno.test("perItemScores reads numeric fields keyed by id and skips malformed items", async () => {
  const [rec] = await syntheticRecords({ tasks: ["retrieve"], items: 4, limit: 1 });
  rec.perItem.push({ id: "bad", mrr: "x" }, { mrr: 1 }, null as unknown as Record<string, unknown>);
  const m = perItemScores(rec, "mrr");
  assert.equal(m.size, 4);
  assert.ok([...m.keys()].every((k) => k.startsWith("q")));
});
