import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "../methods/common.ts";
import { lora } from "../methods/lora.ts";
import { parseMethodConfig } from "../methods/registry.ts";
import { tinyModel as tinyModelOf } from "../methods/tiny_test_utils.ts";
import {
  accumulatedGradients,
  batchStream,
  makeOptimizers,
  totalSteps,
  trainLoop,
  type TrainLoopInput,
} from "./train_loop.ts";

await initBackend("cpu");

/** A tiny decoder (2 layers, dim 16) with seeded random weights. */
const tinyModel = (): LlamaModel => tinyModelOf(3);

/** Eight training rows of 6 token ids, drawn once. */
const ROWS = Array.from(
  { length: 8 },
  (_, i) => Array.from(new Rng(100 + i).uniformArray(6, 0, 32), Math.floor),
);

/** The mean next-token loss of rows `items` (equal lengths: the mean over all their targets). */
function lmLossOf(model: LlamaModel) {
  return (items: number[]): tf.Scalar =>
    tf.tidy(() => model.lmLoss(tf.tensor2d(items.map((i) => ROWS[i]), [items.length, 6], "int32")).loss);
}

Deno.test("accumulatedGradients: two micro-batches of a linear least-squares loss give the closed-form full-batch gradient", async () => {
  // loss(batch) = mean_i (w . x_i - y_i)^2, so the gradient over all n items is
  // (2/n) sum_i (w . x_i - y_i) x_i, computed here in float64 as the reference.
  const xs = [[1, 2], [-1, 0.5], [3, -2], [0.25, 4]];
  const ys = [1, -2, 0.5, 3];
  const w0 = [0.3, -0.7];
  const w = tf.variable(tf.tensor1d(w0));
  const unused = tf.variable(tf.tensor1d([5, 6, 7]));
  const lossOf = (items: number[]): tf.Scalar =>
    tf.tidy(() => {
      const x = tf.tensor2d(items.map((i) => xs[i]));
      const y = tf.tensor1d(items.map((i) => ys[i]));
      return tf.mean(tf.square(tf.sub(tf.squeeze(tf.matMul(x, tf.reshape(w, [2, 1]))), y))) as tf.Scalar;
    });
  const residual = (i: number) => w0[0] * xs[i][0] + w0[1] * xs[i][1] - ys[i];
  const expected = [0, 1].map((k) => (2 / 4) * [0, 1, 2, 3].reduce((s, i) => s + residual(i) * xs[i][k], 0));
  const expectedLoss = [0, 1, 2, 3].reduce((s, i) => s + residual(i) ** 2, 0) / 4;
  const { loss, grads } = await accumulatedGradients(lossOf, [w, unused], [[0, 1], [2, 3]]);
  const g = grads[0].dataSync();
  for (let k = 0; k < 2; k++) {
    assert.ok(Math.abs(g[k] - expected[k]) < 1e-5, `grad ${k}: ${g[k]} vs ${expected[k]}`);
  }
  assert.ok(Math.abs(loss - expectedLoss) < 1e-5, `loss ${loss} vs ${expectedLoss}`);
  // A variable the loss does not reach gets a zero gradient of its shape.
  assert.deepEqual([...grads[1].dataSync()], [0, 0, 0]);
  tf.dispose([...grads, w, unused]);
});

Deno.test("accumulatedGradients: on a tiny LoRA model, 2 x 2 rows accumulate to the gradient of one 4-row batch", async () => {
  const model = tinyModel();
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 2, targets: "q+v" }),
    plainContext(new Rng(1)),
  );
  // Move B off zero so A's gradient is not trivially zero.
  const rng = new Rng(7);
  applied.trainable.forEach((v, i) =>
    v.assign(tf.tidy(() => tf.add(v, tf.tensor(rng.fork(`var${i}`).normalArray(v.size, 0.1), v.shape))))
  );
  const lossOf = lmLossOf(model);
  const vars = applied.trainable;
  const acc = await accumulatedGradients(lossOf, vars, [[0, 5], [2, 7]]);
  // Reference: autodiff of the single 4-row batch's mean loss, without accumulation.
  const { value, grads } = tf.variableGrads(() => lossOf([0, 5, 2, 7]), vars);
  assert.ok(Math.abs(acc.loss - value.dataSync()[0]) < 1e-5);
  let maxDiff = 0;
  let maxAbs = 0;
  vars.forEach((v, i) => {
    const a = acc.grads[i].dataSync();
    const b = grads[v.name].dataSync();
    for (let j = 0; j < a.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
      maxAbs = Math.max(maxAbs, Math.abs(b[j]));
    }
  });
  assert.ok(maxAbs > 1e-4, "the reference gradient is not trivially zero");
  assert.ok(maxDiff < 1e-5 * Math.max(1, maxAbs), `max difference ${maxDiff}`);
  tf.dispose([...acc.grads, value, ...Object.values(grads)]);
  applied.dispose();
  model.dispose();
});

Deno.test("batchStream: every epoch is a permutation of the items; a batch may span two epochs", () => {
  const next = batchStream(5, 2, new Rng(9));
  const drawn = Array.from({ length: 5 }, next).flat(); // 10 items: exactly two epochs
  for (const epoch of [drawn.slice(0, 5), drawn.slice(5)]) {
    assert.deepEqual([...epoch].sort(), [0, 1, 2, 3, 4]);
  }
  assert.deepEqual(Array.from({ length: 5 }, batchStream(5, 2, new Rng(9))).flat(), drawn, "seeded");
  assert.equal(totalSteps({ steps: null, epochs: 3, batchSize: 4, gradAccum: 2 }, 10), 4); // ceil(30 / 8)
  assert.equal(totalSteps({ steps: 7, epochs: 3, batchSize: 4, gradAccum: 2 }, 10), 7);
});

/** A language-modelling task over {@link ROWS} for the loop. */
function rowsTask(model: LlamaModel): TrainLoopInput["task"] {
  return {
    trainItems: ROWS.length,
    loss: lmLossOf(model),
    batchTokens: (items) => 6 * items.length,
    evaluate: () => Promise.resolve({ metrics: { accuracy: 0.5 }, perItem: [], tokens: 0 }),
    primaryMetric: "accuracy",
  };
}

async function trainTiny(batchSize: number, gradAccum: number, steps: number) {
  const model = tinyModel();
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 2, targets: "q+v" }),
    plainContext(new Rng(1)),
  );
  const optimizers = makeOptimizers(applied, [], { weightDecay: 0, clipNorm: 0 });
  const hooked: number[] = [];
  const result = await trainLoop({
    task: rowsTask(model),
    method: { afterStep: (_grads, step) => hooked.push(step) },
    methodVars: applied.trainable,
    headVars: [],
    optimizers,
    steps,
    config: {
      lr: 0.05,
      headLr: 0.05,
      warmupRatio: 0,
      schedule: "cosine",
      batchSize,
      gradAccum,
      evalEvery: 2,
      maxEval: null,
    },
    orderRng: new Rng(4),
    label: "test",
    quiet: true,
  });
  const params = applied.trainable.map((v) => v.dataSync().slice());
  optimizers.method?.dispose();
  applied.dispose();
  model.dispose();
  return { result, params, hooked };
}

Deno.test("trainLoop: batch 2 x accumulation 2 trains like batch 4; curve, schedule, tokens and hooks", async () => {
  const steps = 4;
  const big = await trainTiny(4, 1, steps);
  const accum = await trainTiny(2, 2, steps);
  assert.equal(big.result.failure, null);
  assert.equal(accum.result.failure, null);
  // Both draw the same items per update (one shuffle per epoch of 8 rows, consumed in order).
  big.params.forEach((p, i) => {
    for (let j = 0; j < p.length; j++) {
      assert.ok(Math.abs(p[j] - accum.params[i][j]) < 1e-4, `param ${i}[${j}]`);
    }
  });
  big.result.curve.forEach((p, i) => assert.ok(Math.abs(p.loss - accum.result.curve[i].loss) < 1e-5));
  // Cosine decay without warmup: lr_t = lr * (1 + cos(pi t / T)) / 2.
  assert.deepEqual(
    big.result.curve.map((p) => p.step),
    [0, 1, 2, 3],
  );
  big.result.curve.forEach((p, t) =>
    assert.ok(Math.abs(p.lr - 0.05 * (1 + Math.cos((Math.PI * t) / steps)) / 2) < 1e-12)
  );
  // --eval-every 2: the dev metric on updates 2 (index 1), not on the last one.
  assert.deepEqual(big.result.curve.map((p) => p.evalMetric), [undefined, 0.5, undefined, undefined]);
  assert.equal(big.result.tokens, steps * 4 * 6);
  assert.equal(accum.result.tokens, steps * 4 * 6);
  assert.deepEqual(big.hooked, [0, 1, 2, 3]);
  assert.equal(big.result.stepTimes.length, steps);
  assert.ok(big.result.peakTrainBytes > 0, "update 1 is profiled");
});

Deno.test("trainLoop: a non-finite loss stops the run with the curve up to it", async () => {
  const v = tf.variable(tf.scalar(1));
  let calls = 0;
  const result = await trainLoop({
    task: {
      trainItems: 4,
      loss: () => (++calls >= 3 ? tf.mul(v, NaN) : tf.mul(v, 2)) as tf.Scalar,
      batchTokens: () => 1,
      evaluate: () => Promise.resolve({ metrics: {}, perItem: [], tokens: 0 }),
      primaryMetric: "accuracy",
    },
    method: {},
    methodVars: [v],
    headVars: [],
    optimizers: { method: null, head: null },
    steps: 5,
    config: {
      lr: 0.1,
      headLr: 0.1,
      warmupRatio: 0,
      schedule: "constant",
      batchSize: 1,
      gradAccum: 1,
      evalEvery: 0,
      maxEval: null,
    },
    orderRng: new Rng(0),
    label: "nan",
    quiet: true,
  });
  assert.equal(result.failure, "loss became NaN at step 2; lower --lr or check the data");
  assert.deepEqual(result.curve.map((p) => p.loss), [2, 2]);
  v.dispose();
});
