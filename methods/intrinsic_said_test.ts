import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { FastfoodProjection, fwht, intrinsicSaid } from "./intrinsic_said.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

const H4 = [
  [1, 1, 1, 1],
  [1, -1, 1, -1],
  [1, 1, -1, -1],
  [1, -1, -1, 1],
];
const H8 = [
  [1, 1, 1, 1, 1, 1, 1, 1],
  [1, -1, 1, -1, 1, -1, 1, -1],
  [1, 1, -1, -1, 1, 1, -1, -1],
  [1, -1, -1, 1, 1, -1, -1, 1],
  [1, 1, 1, 1, -1, -1, -1, -1],
  [1, -1, 1, -1, -1, 1, -1, 1],
  [1, 1, -1, -1, -1, -1, 1, 1],
  [1, -1, -1, 1, -1, 1, 1, -1],
];
const matVec = (m: number[][], x: number[]) => m.map((row) => row.reduce((s, v, j) => s + v * x[j], 0));

Deno.test("said: the fast Walsh-Hadamard transform equals the 4x4 and 8x8 Hadamard matrices", () => {
  const x4 = [1, 2, 3, 4];
  assert.deepEqual(Array.from(fwht(tf.tensor1d(x4)).dataSync()), matVec(H4, x4));
  assert.deepEqual(matVec(H4, x4), [10, -2, -4, 0]);
  const x8 = [0.5, -1, 2, 3, -4, 1.5, 0, 7];
  const y8 = fwht(tf.tensor1d(x8)).dataSync();
  matVec(H8, x8).forEach((v, i) => assert.ok(Math.abs(y8[i] - v) < 1e-6));
  // Its gradient is H^T w = H w (H is symmetric).
  const w = [1, 0, -2, 0.5, 3, 1, -1, 2];
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(fwht(x as tf.Tensor1D), tf.tensor1d(w))))(
    tf.tensor1d(x8),
  );
  matVec(H8, w).forEach((v, i) => assert.ok(Math.abs(g.dataSync()[i] - v) < 1e-5));
  assert.throws(() => fwht(tf.tensor1d([1, 2, 3])), /power-of-two/);
});

Deno.test("said: Fastfood columns have unit norm and its gradient is the transpose", () => {
  const p = new FastfoodProjection(5, 16, new Rng(3));
  assert.equal(p.size, 16);
  const cols = [...Array(5).keys()].map((j) => {
    const e = new Float32Array(5);
    e[j] = 1;
    return Array.from(p.project(tf.tensor1d(e)).dataSync());
  });
  for (const c of cols) assert.ok(Math.abs(Math.hypot(...c) - 1) < 1e-5, `column norm ${Math.hypot(...c)}`);
  const w = Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
  const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(p.project(z as tf.Tensor1D), tf.tensor1d(w))))(
    tf.zeros([5]),
  );
  cols.forEach((c, j) =>
    assert.ok(Math.abs(g.dataSync()[j] - c.reduce((s, v, i) => s + v * w[i], 0)) < 1e-5)
  );
  p.dispose();
});

Deno.test("said: Fastfood on a size that is not a power of two keeps unit columns on average (reference normalisation)", () => {
  // dOut 12 pads to 16. Every row of the unscaled 16 x 16 transform H G Pi H B has squared norm
  // 16 ||G||^2, so the 12 kept rows, divided by ||G|| sqrt(12) as fastfood_torched does, have
  // squared Frobenius norm exactly 16: the 16 columns' squared norms average 1 (12/16 when the
  // divisor used the padded size 16).
  const p = new FastfoodProjection(16, 12, new Rng(4));
  assert.equal(p.size, 16);
  let total = 0;
  for (let j = 0; j < 16; j++) {
    const e = new Float32Array(16);
    e[j] = 1;
    const c = p.project(tf.tensor1d(e)).dataSync();
    assert.equal(c.length, 12);
    for (const v of c as Float32Array) total += v * v;
  }
  assert.ok(Math.abs(total / 16 - 1) < 1e-5, `mean squared column norm ${total / 16}`);
  p.dispose();
});

Deno.test("said: identity at init; exactly d trainable values; too small d is an error", () => {
  assertIdentityAtInit(intrinsicSaid, {});
  const { applied } = applyTiny(intrinsicSaid, { intrinsicDim: 37, targets: "q+k+v+o" });
  assert.equal(trainableCount(applied), 37);
  assert.deepEqual(applied.trainable.map((v) => v.size), [37 - 8, 8]); // 2 layers x 4 targets
  applied.dispose();
  assert.throws(
    () => applyTiny(intrinsicSaid, { intrinsicDim: 4 }),
    /--opt intrinsicDim=4 must exceed .* \(4\)/,
  );
});

Deno.test("said: trains with a frozen base, and merging gives the same function", () => {
  const { model, applied } = applyTiny(intrinsicSaid, { intrinsicDim: 60 });
  assertTrainsFrozenBase(model, applied, 5, 5e-2);
  const adapted = logitsOf(model, tinyBatch());
  applied.merge!();
  assert.ok(maxAbsDiff(adapted, logitsOf(model, tinyBatch())) < 1e-5);
});

Deno.test("said: state round trip", () => assertStateRoundTrip(intrinsicSaid, { intrinsicDim: 30 }));
