import assert from "node:assert/strict";
import { join } from "node:path";
import {
  EVAL_RUN_METRICS,
  metricDirection,
  metricSpec,
  primaryMetricOf,
  rankingMetricOf,
  TASK_METRICS,
  taskPrimary,
} from "./table.ts";
import { rankingMeasure } from "./ranking.ts";
import { readRecords } from "../record.ts";
import { MEASURES } from "../../scripts/eval_run.ts";
import { parsePolicy, qualityDirection } from "../check_policy.ts";
import { InputError } from "../../models/util/args.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("every metric every task writes has a table entry; primaries and directions as published", () => {
  for (const [task, t] of Object.entries(TASK_METRICS)) {
    assert.ok(t.reported.includes(t.primary), `${task}: primary ${t.primary} is reported`);
    for (const m of [...t.reported, ...t.fallbacks]) assert.ok(metricSpec(m), `${task}: ${m} in the table`);
  }
  // Directions by definition: proportions of correct answers / relevant documents rise with
  // quality; perplexity and bits per byte are exponentials of the NLL, which falls with quality.
  const expected: Record<string, string> = {
    accuracy: "higher",
    macroF1: "higher",
    mrr: "higher",
    "recall@10": "higher",
    "ndcg@3": "higher",
    perplexity: "lower",
    bytePerplexity: "lower",
    wordPerplexity: "lower",
    bitsPerByte: "lower",
    meanNll: "lower",
  };
  for (const [m, d] of Object.entries(expected)) assert.equal(metricDirection(m), d, m);
  assert.deepEqual(taskPrimary("classify"), { primaryMetric: "accuracy", higherIsBetter: true });
  assert.deepEqual(taskPrimary("retrieve"), { primaryMetric: "mrr", higherIsBetter: true });
  assert.deepEqual(taskPrimary("lm"), { primaryMetric: "perplexity", higherIsBetter: false });
  assert.equal(metricSpec("recall@0"), undefined);
  assert.equal(metricSpec("toString"), undefined, "no prototype names");
  assert.equal(metricDirection("somethingElse"), undefined);
  assert.throws(() => primaryMetricOf("translate"), /unknown task 'translate'/);
  assert.equal(rankingMetricOf("retrieve", ["ndcg@10"])!.name, "ndcg@10");
  assert.equal(rankingMetricOf("retrieve", ["mrr", "ndcg@10"])!.name, "mrr");
});

Deno.test("the tasks declare their primary metric only through the table", async () => {
  for (const task of ["classify", "retrieve", "lm"] as const) {
    const src = await Deno.readTextFile(join(ROOT, "bench/tasks", `${task}.ts`));
    assert.match(src, new RegExp(`\\.\\.\\.taskPrimary\\("${task}"\\)`), `${task}.ts spreads taskPrimary`);
    assert.doesNotMatch(src, /higherIsBetter:|primaryMetric:/, `${task}.ts declares nothing of its own`);
  }
});

Deno.test("the committed baselines carry exactly the metrics the table lists for their task", async () => {
  // Baselines come from real runs of the three tasks: what the tasks really write.
  const records = await readRecords(join(ROOT, "baselines"));
  const tasks = new Set(records.map((r) => r.config.task));
  assert.deepEqual([...tasks].sort(), ["classify", "lm", "retrieve"]);
  for (const r of records) {
    assert.deepEqual(Object.keys(r.metrics), TASK_METRICS[r.config.task].reported, r.runId);
  }
});

Deno.test("eval-run's measures are the table's, under trec_eval's names", () => {
  assert.deepEqual(MEASURES.map(([n]) => n), [
    "map",
    "recip_rank",
    "P_5",
    "P_10",
    "recall_5",
    "recall_10",
    "ndcg",
    "ndcg_cut_5",
    "ndcg_cut_10",
  ]);
  assert.equal(EVAL_RUN_METRICS.length, MEASURES.length);
  // Same function for the same name: judgments d1 (rel 1), d2 (rel 0); d2 ranked first.
  const j = new Map([["d1", 1], ["d2", 0]]);
  assert.equal(rankingMeasure("mrr")(["d2", "d1"], j), 0.5);
  assert.equal(rankingMeasure("recall@1")(["d2", "d1"], j), 0);
  assert.equal(rankingMeasure("precision@5")(["d2", "d1"], j), 1 / 5);
  assert.throws(() => rankingMeasure("accuracy"), /not a ranking metric/);
});

Deno.test("policy: directions come from the table; a contradicting 'better' is refused", async () => {
  const text = await Deno.readTextFile(join(ROOT, "baselines/policy.json"));
  const policy = parsePolicy(text, "policy.json");
  for (const [m, tol] of Object.entries(policy.quality.metrics)) {
    assert.equal(tol.better, undefined, `policy.json repeats the direction of ${m}`);
  }
  assert.equal(qualityDirection("perplexity", policy), "lower");
  assert.equal(qualityDirection("accuracy", policy), "higher");
  assert.equal(qualityDirection("custom", policy), null);
  const raw = JSON.parse(text);
  raw.quality.metrics.custom = { abs: 1, better: "lower" };
  assert.equal(qualityDirection("custom", parsePolicy(JSON.stringify(raw), "p.json")), "lower");
  raw.quality.metrics.perplexity.better = "higher";
  assert.throws(
    () => parsePolicy(JSON.stringify(raw), "p.json"),
    (e: Error) => e instanceof InputError && /perplexity\.better .*bench\/metrics\/table\.ts/.test(e.message),
  );
});
