import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { OrthoGeoLinear, orthogeolora, orthonormalRows } from "./orthogeolora.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG, trainSteps } from "./tiny_test_utils.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_test_utils.ts";

await initBackend("cpu");

const OPTS = { rank: 4, alpha: 8, targets: "q+v" };
const LAYERS = ["layers.0.attn.q", "layers.0.attn.v", "layers.1.attn.q", "layers.1.attn.v"];

/** max |M M^T - I| of a matrix with (supposedly) orthonormal rows. */
function orthError(rows: tf.Tensor2D): number {
  const g = tf.sub(tf.matMul(rows, rows, false, true), tf.eye(rows.shape[0]));
  return Math.max(...g.dataSync().map(Math.abs));
}

Deno.test("orthogeolora: identity at init, trains with a frozen base, merges to the same function", () => {
  assertIdentityTrainsMerges(orthogeolora, OPTS);
});

Deno.test("orthogeolora: A^T A = I and B^T B = I after training, and the frames moved", () => {
  const { model, applied } = applyTiny(orthogeolora, OPTS);
  const before = LAYERS.map((n) => (model.linear(n) as OrthoGeoLinear).frames().at.dataSync());
  trainSteps(model, applied, 8);
  LAYERS.forEach((n, i) => {
    const { at, bt } = (model.linear(n) as OrthoGeoLinear).frames();
    assert.ok(orthError(at) < 1e-5, `${n}: A^T A != I`);
    assert.ok(orthError(bt) < 1e-5, `${n}: B^T B != I`);
    assert.ok(maxAbsDiff(at.dataSync(), before[i]) > 1e-5, `${n}: A never moved`);
  });
  applied.dispose();
});

Deno.test("orthogeolora: the retraction is the sign-fixed QR (diag R > 0) of tf.linalg.qr", () => {
  const x = tf.randomNormal([5, 3], 0, 1, "float32", 11) as tf.Tensor2D; // columns to orthonormalise
  const [q, r] = tf.linalg.qr(x);
  const rd = r.arraySync() as number[][];
  const fixed = tf.mul(q, tf.tensor2d([[0, 1, 2].map((i) => Math.sign(rd[i][i]))]));
  const ours = tf.transpose(orthonormalRows(tf.transpose(x)));
  assert.ok(maxAbsDiff(ours.dataSync(), fixed.dataSync()) < 1e-5);
  // R = Q^T X is upper triangular with a positive diagonal.
  const rr = tf.matMul(ours, x, true, false).arraySync() as number[][];
  for (let i = 0; i < 3; i++) {
    assert.ok(rr[i][i] > 0);
    for (let j = 0; j < i; j++) assert.ok(Math.abs(rr[i][j]) < 1e-5);
  }
});

Deno.test("orthogeolora: trainable parameters = r (in + out + 1) per adapted layer", () => {
  const { applied } = applyTiny(orthogeolora, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  assert.equal(trainableCount(applied), c.nLayers * OPTS.rank * (c.dim + c.dim + 1 + c.dim + kv + 1));
  applied.dispose();
});

Deno.test("orthogeolora: state round trip; PEFT export is the equivalent plain LoRA", () => {
  assertStateRoundTrip(orthogeolora, OPTS);
  const { model, applied } = applyTiny(orthogeolora, OPTS);
  trainSteps(model, applied, 3);
  const { config, tensors } = applied.peftExport!();
  const m = "base_model.model.model.layers.1.self_attn.v_proj";
  const a = tensors.get(`${m}.lora_A.weight`)!;
  const b = tensors.get(`${m}.lora_B.weight`)!;
  const s = (config.lora_alpha as number) / (config.r as number);
  const lora = tf.mul(
    tf.matMul(
      tf.tensor2d(b.data, b.shape as [number, number]),
      tf.tensor2d(a.data, a.shape as [number, number]),
    ),
    s,
  );
  const delta = applied.deltaWeights!().get("layers.1.attn.v")!;
  assert.ok(maxAbsDiff(lora.dataSync(), delta.dataSync()) < 1e-6);
  applied.dispose();
});
