import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { delora, DeloraLinear } from "./delora.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

Deno.test("delora: identity at init, trains, frozen base, state round trip, merges", () => {
  checkContract(delora, { targets: "q+k+v+o", rank: 2 });
});

/** PEFT's dW = B diag(lambda / r / (||a_i|| ||b_i||)) A diag(||W_:,j||), in float64 arrays. */
function expectedDelta(a: Mat, b: Mat, lambda: number, w: Mat): Mat {
  const r = a.length;
  const an = a.map((row) => Math.max(Math.hypot(...row), 1e-4));
  const bn = transpose(b).map((col) => Math.max(Math.hypot(...col), 1e-4));
  const wn = transpose(w).map((col) => Math.hypot(...col));
  const bs = b.map((row) => row.map((x, i) => (x * lambda) / r / (an[i] * bn[i])));
  return matmul(bs, a).map((row) => row.map((x, j) => x * wn[j]));
}

Deno.test("delora: dW and forward match PEFT's formula; the update is scale-free in A and B and bounded by lambda", () => {
  const { model, applied } = applyTiny(delora, { targets: "v", rank: 3, deloraLambda: 2 });
  const layer = model.linear("layers.1.attn.v") as DeloraLinear;
  assert.ok(layer.b.dataSync().every((x) => x === 0));
  assert.equal(layer.lambda.dataSync()[0], 2);
  layer.b.assign(tf.randomNormal(layer.b.shape, 0, 1, "float32", 3));
  const w = layer.base.denseWeight().arraySync();
  const want = expectedDelta(layer.a.arraySync() as Mat, layer.b.arraySync() as Mat, 2, w);
  assert.ok(maxAbsDiff(layer.delta().dataSync(), want.flat()) < 1e-5);
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 2) as tf.Tensor2D;
  const y = matmul(x.arraySync(), transpose(w.map((row, i) => row.map((v, j) => v + want[i][j]))));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), y.flat()) < 1e-5);
  // Scaling A and B changes nothing: only lambda sets the strength.
  layer.a.assign(tf.mul(layer.a, 7));
  layer.b.assign(tf.mul(layer.b, 0.3));
  assert.ok(maxAbsDiff(layer.delta().dataSync(), want.flat()) < 1e-5);
  // ||dW diag(1/||W_:,j||)||_F <= lambda.
  const wn = transpose(w).map((col) => Math.hypot(...col));
  const fro = Math.hypot(...(layer.delta().arraySync()).flatMap((row) => row.map((v, j) => v / wn[j])));
  assert.ok(fro <= 2 + 1e-5 && fro > 0.1, `normalised norm ${fro}`);
  applied.dispose();
});

Deno.test("delora: trainable count r (in + out) + 1; PEFT export with the w_norm buffer", () => {
  const c = TINY_CONFIG;
  const { model, applied } = applyTiny(delora, { targets: "q+v", rank: 2 });
  assert.equal(trainableCount(applied), c.nLayers * (2 * (c.dim + c.dim) + 1 + 2 * (c.dim + 8) + 1));
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "DELORA");
  assert.equal(e.config.delora_lambda, 15);
  const wn = e.tensors.get("base_model.model.model.layers.0.self_attn.q_proj.delora_w_norm")!;
  const w = model.linear("layers.0.attn.q") as DeloraLinear;
  const cols = transpose(w.base.denseWeight().arraySync()).map((col) => Math.hypot(...col));
  assert.ok(maxAbsDiff(wn.data, cols) < 1e-5);
  applied.dispose();
});
