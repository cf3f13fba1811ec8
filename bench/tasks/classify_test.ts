import assert from "node:assert/strict";
import { initBackend } from "../../models/backend.ts";
import { tinyModel } from "../../methods/tiny_test_utils.ts";
import { Rng } from "../../models/util/rng.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import type { ClassificationDataset } from "../../datasets/types.ts";
import { classifyTask } from "./classify.ts";

await initBackend("cpu");

/** Characters to ids below the tiny model's vocabulary of 32. */
const tokenizer: Tokenizer = {
  vocabSize: 32,
  bosId: null,
  eosId: 1,
  padId: 0,
  encode: (text) => [...text].map((c) => 2 + (c.charCodeAt(0) % 30)),
  decode: () => "",
};

// A test split sorted by label: 12 'a', 6 'b', 6 'c'.
const test = [...Array(24).keys()].map((i) => ({
  id: `t${i}`,
  text: `item ${i}`,
  label: i < 12 ? "a" : i < 18 ? "b" : "c",
}));
const data: ClassificationDataset = {
  task: "classify",
  name: "sorted",
  splitSeed: 0,
  labels: ["a", "b", "c"],
  train: test.slice(0, 3),
  dev: test.slice(0, 3),
  test,
};

/** Evaluate the test split of `dataset` (first items) through a fresh task with these options. */
async function evaluateWith(
  model: ReturnType<typeof tinyModel>,
  options: { maxLength: number; evalBatch?: number },
  maxItems: number | null,
  dataset = data,
) {
  const task = classifyTask(
    model,
    tokenizer,
    dataset,
    { pooling: "mean", maxEvalMode: "first", ...options },
    new Rng(0),
  );
  const evaluation = await task.evaluate("test", maxItems);
  task.dispose();
  return evaluation;
}

Deno.test("classify --max-eval: first N by default (unchanged); stratified on request, the same items for every run", async () => {
  const model = tinyModel(1);
  const labelsOf = async (mode: "first" | "stratified" | undefined, seed: number) => {
    const task = classifyTask(
      model,
      tokenizer,
      data,
      { maxLength: 8, pooling: "mean", maxEvalMode: mode },
      new Rng(seed),
    );
    const ev = await task.evaluate("test", 8);
    task.dispose();
    return ev.perItem.map((p) => [p.id, p.label]);
  };
  const first = await labelsOf(undefined, 0);
  assert.deepEqual(first.map(([id]) => id), ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
  assert.ok(first.every(([, l]) => l === "a"), "the first 8 of a sorted split are one class");
  const strat = await labelsOf("stratified", 0);
  const count = (l: string) => strat.filter(([, x]) => x === l).length;
  // 8 of 24 at shares 1/2, 1/4, 1/4.
  assert.deepEqual([count("a"), count("b"), count("c")], [4, 2, 2]);
  // Another run seed scores the same subset (paired comparisons stay paired).
  assert.deepEqual(await labelsOf("stratified", 7), strat);
  // --max-eval at or above the split size: every item, in either mode.
  const task = classifyTask(model, tokenizer, data, {
    maxLength: 8,
    pooling: "mean",
    maxEvalMode: "stratified",
  }, new Rng(0));
  assert.equal((await task.evaluate("test", 100)).perItem.length, 24);
  task.dispose();
  model.dispose();
});

Deno.test("classify evaluation counts the tokens it reads: each scored text's ids, cut at --max-length", async () => {
  const model = tinyModel(1);
  // "item 0" .. "item 9" are 6 characters (6 ids), "item 10" .. 7 characters cut to 6.
  assert.equal((await evaluateWith(model, { maxLength: 6 }, 8)).tokens, 8 * 6);
  assert.equal((await evaluateWith(model, { maxLength: 4 }, 24)).tokens, 24 * 4);
  model.dispose();
});

Deno.test("classify evaluation batches texts by length: each item's prediction is the one it gets alone", async () => {
  const model = tinyModel(3);
  // Texts of 1 to 12 characters in a scrambled order, so length batches differ from file order.
  const varied = test.map((e, i) => ({ ...e, text: "abcdefghijkl".slice(0, 1 + (i * 7) % 12) }));
  const predsWith = async (evalBatch: number) =>
    (await evaluateWith(model, { maxLength: 16, evalBatch }, null, { ...data, test: varied })).perItem
      .map((p) => p.pred);
  const alone = await predsWith(1);
  assert.ok(new Set(alone).size > 1, "the random head separates some items");
  assert.deepEqual(await predsWith(5), alone);
  assert.deepEqual(await predsWith(32), alone);
  model.dispose();
});
