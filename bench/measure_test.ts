import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { evaluateAndMeasure, measureInference, memoryRecord } from "./measure.ts";
import type { RunRecord } from "./record.ts";
import type { TaskRunner } from "./tasks/types.ts";

await initBackend("cpu");

const EMPTY: RunRecord["memory"] = {
  peakTrainBytes: 0,
  peakInferBytes: 0,
  breakdown: { frozenWeights: 0, trainable: 0, optimizerState: 0, activations: 0 },
  computed: ["activations"],
  rssBytes: 0,
  source: "tfjs tensor bytes (backend memory)",
};

Deno.test("memoryRecord: activations are the training peak less frozen, trainable (4 bytes each) and optimizer bytes", () => {
  const parts = {
    peakInferBytes: 700,
    frozenBytes: 300,
    trainableParams: 10,
    optimizerBytes: 80,
    rssBytes: 5,
  };
  const m = memoryRecord(EMPTY, { ...parts, peakTrainBytes: 1000 });
  assert.deepEqual(m.breakdown, {
    frozenWeights: 300,
    trainable: 40,
    optimizerState: 80,
    activations: 1000 - 300 - 40 - 80,
  });
  assert.deepEqual([m.peakTrainBytes, m.peakInferBytes, m.rssBytes], [1000, 700, 5]);
  assert.deepEqual([m.computed, m.source], [EMPTY.computed, EMPTY.source]);
  // Without a profiled update (fewer than two), inference's peak stands in for training's.
  const noUpdate = memoryRecord(EMPTY, { ...parts, peakTrainBytes: 0 });
  assert.equal(noUpdate.peakTrainBytes, 700);
  assert.equal(noUpdate.breakdown.activations, 700 - 300 - 40 - 80);
  // A peak below the stored parts (they were allocated before the profile) gives 0, not a negative.
  assert.equal(memoryRecord(EMPTY, { ...parts, peakTrainBytes: 100 }).breakdown.activations, 0);
});

/** A task whose inference runs one kernel on 1 KiB tensors and records which items it ran. */
function fakeTask(testItems: number, calls: number[], evaluated: unknown[]): TaskRunner {
  return {
    primaryMetric: "accuracy",
    higherIsBetter: true,
    headVariables: [],
    trainItems: 0,
    trainSequences: () => [],
    loss: () => tf.scalar(0),
    batchTokens: () => 0,
    evaluate: (split, maxItems) => {
      evaluated.push([split, maxItems]);
      return Promise.resolve({ metrics: { accuracy: 0.25 }, perItem: [{ correct: true }], tokens: 7 });
    },
    inferOne: (i) => {
      calls.push(i);
      tf.tidy(() => tf.add(tf.ones([256]), 1)).dispose(); // a kernel, as a real forward pass runs
      return Promise.resolve();
    },
    testItems,
    dispose: () => {},
  };
}

Deno.test("measureInference: three warm-up items, then min(count, test items) timed ones (at least one)", async () => {
  const calls: number[] = [];
  assert.equal((await measureInference(fakeTask(5, calls, []), 20)).length, 5);
  assert.deepEqual(calls, [0, 1, 2, 0, 1, 2, 3, 4]);
  calls.length = 0;
  assert.equal((await measureInference(fakeTask(0, calls, []), 20)).length, 1);
  assert.deepEqual(calls, [0, 1, 2, 0]);
});

Deno.test("evaluateAndMeasure: the test split at --max-eval, 20 latency samples and one inference's peak bytes", async () => {
  const calls: number[] = [];
  const evaluated: unknown[] = [];
  const m = await evaluateAndMeasure(fakeTask(50, calls, evaluated), 40);
  assert.deepEqual(evaluated, [["test", 40]]);
  assert.deepEqual(m.evaluation.metrics, { accuracy: 0.25 });
  assert.equal(m.inferTimes.length, 20);
  assert.equal(calls.length, 3 + 20 + 1);
  assert.ok(m.peakInferBytes >= 1024, `peak ${m.peakInferBytes}`);
  assert.ok(m.evalSeconds >= 0);
});
