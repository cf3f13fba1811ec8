import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { loha, LohaLinear } from "./loha.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("loha: identity at init, trains, frozen base, state round trip, merges", () => {
  checkContract(loha, { rank: 2, alpha: 4, targets: "q+k+v+o" });
});

Deno.test("loha: trainable parameters = 2 r (in + out) per adapted layer", () => {
  const c = TINY_CONFIG;
  const { applied } = applyTiny(loha, { rank: 3, targets: "all-linear" });
  const kv = c.nKvHeads * c.headDim;
  const perLayer = 2 * (c.dim + c.dim) + 2 * (c.dim + kv) + 3 * (c.dim + c.hiddenDim);
  assert.equal(trainableCount(applied), c.nLayers * 2 * 3 * perLayer);
  applied.dispose();
});

Deno.test("loha: dW = (alpha/r) (B1 A1) ⊙ (B2 A2) with A2 zero at init, and the forward uses it", () => {
  const { model, applied } = applyTiny(loha, { rank: 2, alpha: 6, targets: "v" });
  const layer = model.linear("layers.1.attn.v") as LohaLinear;
  assert.ok(layer instanceof LohaLinear);
  assert.equal(layer.scale, 3);
  assert.ok(layer.a2.dataSync().every((x) => x === 0));
  assert.ok(layer.b1.dataSync().some((x) => x !== 0) && layer.a1.dataSync().some((x) => x !== 0));
  layer.a2.assign(tf.randomUniform(layer.a2.shape, -1, 1, "float32", 5));
  const expected = tf.tidy(() =>
    tf.mul(tf.mul(tf.matMul(layer.b1, layer.a1), tf.matMul(layer.b2, layer.a2)), 3).dataSync()
  );
  assert.ok(maxAbsDiff(applied.deltaWeights!().get("layers.1.attn.v")!.dataSync(), expected) < 1e-6);
  // forward = base + x dW^T
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 2) as tf.Tensor2D;
  const want = tf.add(layer.base.forward(x), tf.matMul(x, layer.delta(), false, true));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.dataSync()) < 1e-5);
  applied.dispose();
});

Deno.test("loha: impossible rank and unknown options are errors", () => {
  assert.throws(
    () => applyTiny(loha, { rank: 9, targets: "k" }),
    /--rank 9 is impossible for layers.0.attn.k/,
  );
  assert.throws(
    () => applyTiny(loha, { decomposeFactor: 2 }),
    /method loha does not take option 'decomposeFactor'/,
  );
});
