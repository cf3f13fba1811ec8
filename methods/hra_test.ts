import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { hra, HraLinear } from "./hra.ts";
import { assertMergeEquivalent, checkContract } from "./contract_test_utils.ts";
import { applyTiny, assertTrainsFrozenBase, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const eye = (n: number): Mat =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i === j ? 1 : 0));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

/** I - 2 u u^T / (u^T u) in plain arrays. */
function reflection(u: number[]): Mat {
  const n2 = u.reduce((s, x) => s + x * x, 0);
  return eye(u.length).map((row, i) => row.map((x, j) => x - (2 * u[i] * u[j]) / n2));
}

Deno.test("hra: identity at init (even r), trains, frozen base, state round trip, merges", () => {
  checkContract(hra, { targets: "q+k+v+o", rank: 4 });
});

Deno.test("hra: applyGS starts from independent columns (not the identity) and trains", () => {
  const before = logitsOf(tinyModel(), tinyBatch());
  const { model, applied } = applyTiny(hra, { targets: "mlp", rank: 2, applyGS: true });
  const adapted = logitsOf(model, tinyBatch());
  assert.ok(adapted.every(Number.isFinite) && maxAbsDiff(before, adapted) > 1e-4);
  assertTrainsFrozenBase(model, applied);
  assertMergeEquivalent(model, applied, adapted);
  applied.dispose();
});

Deno.test("hra: PEFT's init repeats each Kaiming column twice (bound 1/sqrt(r/2)); odd r is not the identity", () => {
  const { model, applied } = applyTiny(hra, { targets: "q", rank: 6 });
  const u = (model.linear("layers.0.attn.q") as HraLinear).u.arraySync() as number[][];
  const bound = 1 / Math.sqrt(3);
  for (const row of u) {
    for (let j = 0; j < 6; j += 2) assert.equal(row[j], row[j + 1]);
    assert.ok(row.every((x) => Math.abs(x) <= bound));
  }
  assert.ok(u.flat().some((x) => Math.abs(x) > 0.8 * bound)); // drawn with the wider bound, not 1/sqrt(6)
  applied.dispose();
  const before = logitsOf(tinyModel(), tinyBatch());
  const odd = applyTiny(hra, { targets: "q", rank: 3 });
  assert.ok(maxAbsDiff(before, logitsOf(odd.model, tinyBatch())) > 1e-4);
  odd.applied.dispose();
});

Deno.test("hra: W' = W H_1 ... H_r, H orthogonal, forward = W H x + b", () => {
  const { model, applied } = applyTiny(hra, { targets: "v", rank: 3 });
  const layer = model.linear("layers.1.attn.v") as HraLinear;
  const u = layer.u.arraySync() as number[][];
  let h = eye(TINY_CONFIG.dim);
  for (let i = 0; i < 3; i++) h = matmul(h, reflection(u.map((row) => row[i])));
  assert.ok(maxAbsDiff(layer.householder().dataSync(), h.flat()) < 1e-5);
  assert.ok(maxAbsDiff(matmul(transpose(h), h).flat(), eye(TINY_CONFIG.dim).flat()) < 1e-5);
  const w = layer.base.denseWeight().arraySync();
  const want = matmul(w, h).map((row, i) => row.map((x, j) => x - w[i][j]));
  assert.ok(maxAbsDiff(layer.delta().dataSync(), want.flat()) < 1e-5);
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 2) as tf.Tensor2D;
  const y = matmul(x.arraySync(), transpose(matmul(w, h)));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), y.flat()) < 1e-5);
  applied.dispose();
});

Deno.test("hra: with applyGS, H = I - 2 Q Q^T equals the product of the orthonormalised reflections", () => {
  const { model, applied } = applyTiny(hra, { targets: "q", rank: 3, applyGS: true });
  const layer = model.linear("layers.0.attn.q") as HraLinear;
  layer.u.assign(tf.randomNormal(layer.u.shape, 0, 1, "float32", 9));
  // Gram-Schmidt by hand (float64), then the product of reflections of orthonormal vectors.
  const cols = transpose(layer.u.arraySync() as number[][]);
  const q: number[][] = [];
  for (const c of cols) {
    let v = [...c];
    for (const p of q) {
      const d = p.reduce((s, x, i) => s + x * v[i], 0);
      v = v.map((x, i) => x - d * p[i]);
    }
    const n = Math.hypot(...v);
    q.push(v.map((x) => x / n));
  }
  let h = eye(TINY_CONFIG.dim);
  for (const v of q) h = matmul(h, reflection(v));
  assert.ok(maxAbsDiff(layer.householder().dataSync(), h.flat()) < 1e-5);
  applied.dispose();
});

Deno.test("hra: trainable count in * r; PEFT export names and config", () => {
  const c = TINY_CONFIG;
  const { applied } = applyTiny(hra, { targets: "all-linear", rank: 2 });
  assert.equal(trainableCount(applied), c.nLayers * 2 * (6 * c.dim + c.hiddenDim));
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "HRA");
  assert.equal(e.config.r, 2);
  assert.equal(e.config.apply_GS, false);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.0.mlp.down_proj.hra_u")!.shape, [
    c.hiddenDim,
    2,
  ]);
  applied.dispose();
  assert.throws(() => applyTiny(hra, { alpha: 2 }), /method hra does not take option 'alpha'/);
});
