import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { dora, DoraLinear } from "./dora.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_test_utils.ts";

await initBackend("cpu");

const OPTS = { rank: 4, alpha: 8, targets: "q+v" };

Deno.test("dora: identity at init, trains with a frozen base, merges to the same function", () => {
  assertIdentityTrainsMerges(dora, OPTS);
});

Deno.test("DoRA's magnitude starts at the weight's norms", () => {
  const { model, applied } = applyTiny(dora, OPTS);
  const w = model.param("layers.1.attn.v.weight");
  const [out, inF] = w.shape;
  const data = w.dataSync();
  const m = applied.state().get("layers.1.attn.v.lora_magnitude_vector")!;
  assert.deepEqual(m.shape, [out]);
  for (let i = 0; i < out; i++) {
    let s = 0;
    for (let j = 0; j < inF; j++) s += data[i * inF + j] ** 2;
    assert.ok(Math.abs(m.data[i] - Math.sqrt(s)) < 1e-6);
  }
  applied.dispose();
});

Deno.test("dora: trainable parameters = r (in + out) + out per adapted layer", () => {
  const { applied } = applyTiny(dora, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  const r = OPTS.rank;
  assert.equal(trainableCount(applied), c.nLayers * (r * (c.dim + c.dim) + c.dim + r * (c.dim + kv) + kv));
  applied.dispose();
});

Deno.test("dora: the norm is detached (gradients equal those with n held constant) and merges row-wise", () => {
  const { model, applied } = applyTiny(dora, OPTS);
  const layer = model.linear("layers.0.attn.q") as DoraLinear;
  layer.b.assign(tf.randomNormal(layer.b.shape, 0, 0.3, "float32", 7));
  layer.magnitude.assign(tf.add(layer.magnitude, 0.2));
  const x = tf.randomNormal([5, TINY_CONFIG.dim], 0, 1, "float32", 3) as tf.Tensor2D;
  const c = tf.randomNormal([5, TINY_CONFIG.dim], 0, 1, "float32", 4);
  const vars = [layer.a, layer.b, layer.magnitude];
  const got = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), c)) as tf.Scalar, vars).grads;
  // Reference: explicit dense W' with n = ||W + sBA||_c computed outside the tape.
  const w = layer.base.denseWeight();
  const n = tf.norm(tf.add(w, tf.mul(tf.matMul(layer.b, layer.a), layer.scale)), 2, 1);
  const want = tf.variableGrads(() => {
    const dir = tf.add(w, tf.mul(tf.matMul(layer.b, layer.a), layer.scale));
    const wp = tf.mul(dir, tf.reshape(tf.div(layer.magnitude, n), [-1, 1]));
    return tf.sum(tf.mul(tf.matMul(x, wp, false, true), c)) as tf.Scalar;
  }, vars).grads;
  for (const v of vars) assert.ok(maxAbsDiff(got[v.name].dataSync(), want[v.name].dataSync()) < 1e-4);
  // Merged weight W' rows have norm m.
  const merged = tf.add(w, layer.delta());
  assert.ok(maxAbsDiff(tf.norm(merged, 2, 1).dataSync(), layer.magnitude.dataSync()) < 1e-5);
  applied.dispose();
});

Deno.test("dora: state round trip and PEFT export with lora_magnitude_vector", () => {
  assertStateRoundTrip(dora, OPTS);
  const { applied } = applyTiny(dora, OPTS);
  const { config, tensors } = applied.peftExport!();
  assert.equal(config.use_dora, true);
  assert.equal(config.peft_type, "LORA");
  const m = tensors.get("base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector")!;
  assert.deepEqual(m.shape, [TINY_CONFIG.nKvHeads * TINY_CONFIG.headDim]);
  assert.ok(tensors.has("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"));
  assert.equal(tensors.size, 3 * 2 * TINY_CONFIG.nLayers);
  applied.dispose();
});
