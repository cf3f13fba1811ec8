import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { glora, GloraLinear } from "./glora.ts";
import { plainContext } from "./common.ts";
import { assertMergeEquivalent, assertTrainsRestFrozen, checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("glora: identity at init, trains, frozen base, state round trip, merges (no bias created)", () => {
  const { model } = checkContract(glora, { rank: 2, targets: "q+k+v+o" });
  const merged = model.linear("layers.0.attn.q");
  assert.ok(!(merged instanceof GloraLinear));
  assert.equal(merged.bias, null); // default biasTerms "if-bias": Llama layers stay bias-less
});

Deno.test("glora biasTerms=always (the paper): contract holds, the merge creates a bias", () => {
  const { model } = checkContract(glora, { rank: 2, targets: "q+k+v+o", biasTerms: "always" });
  assert.deepEqual(model.linear("layers.0.attn.q").bias?.shape, [TINY_CONFIG.dim]);
});

Deno.test("glora: trainable parameters = 2 r (in + out) per layer without bias; + in + out with biasTerms=always", () => {
  const c = TINY_CONFIG;
  const { applied } = applyTiny(glora, { rank: 3, targets: "mlp" });
  // mlp = gate, up [hidden, dim] and down [dim, hidden]: in + out = dim + hidden for each of the 3.
  assert.equal(trainableCount(applied), c.nLayers * 3 * (2 * 3 * (c.dim + c.hiddenDim)));
  applied.dispose();
  const always = applyTiny(glora, { rank: 3, targets: "mlp", biasTerms: "always" }).applied;
  assert.equal(trainableCount(always), c.nLayers * 3 * (2 * 3 * (c.dim + c.hiddenDim) + c.dim + c.hiddenDim));
  always.dispose();
  assert.throws(() => applyTiny(glora, { alpha: 2 }), /method glora does not take option 'alpha'/);
  assert.throws(() => applyTiny(glora, { biasTerms: "never" }), /option 'biasTerms'/);
});

Deno.test("glora: without a bias, only W' = W0 + W0 ⊙ A + B (no C, D, E), in the forward and the merge", () => {
  const { model, applied } = applyTiny(glora, { rank: 2, targets: "o" });
  const layer = model.linear("layers.1.attn.o") as GloraLinear;
  const t = layer.t;
  assert.deepEqual([t.c, t.d, t.e], [null, null, null]);
  assert.deepEqual(
    [...applied.state().keys()].filter((k) => k.startsWith("layers.1.")).map((k) => k.split(".").pop()),
    ["glora_Ad", "glora_Au", "glora_Bd", "glora_Bu"],
  );
  for (const [i, v] of [t.ad, t.bd].entries()) v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", i));
  const w0 = layer.base.denseWeight();
  const w = tf.add(tf.add(w0, tf.mul(w0, tf.matMul(t.ad, t.au))), tf.matMul(t.bd, t.bu));
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 7) as tf.Tensor2D;
  const want = tf.matMul(x, w, false, true).dataSync();
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want) < 1e-5);
  applied.merge!();
  const merged = model.linear("layers.1.attn.o");
  assert.equal(merged.bias, null);
  assert.ok(maxAbsDiff(merged.forward(x).dataSync(), want) < 1e-5);
});

Deno.test("glora biasTerms=always: W' = W0 + W0 ⊙ A + B and b' = E + W0 C in the forward and the merge", () => {
  const { model, applied } = applyTiny(glora, { rank: 2, targets: "o", biasTerms: "always" });
  const layer = model.linear("layers.1.attn.o") as GloraLinear;
  const t = layer.t;
  const [c, e] = [t.c!, t.e!];
  assert.ok([t.ad, t.bd, c, e].every((v) => v.dataSync().every((x) => x === 0)));
  assert.equal(t.d, null);
  for (const [i, v] of [t.ad, t.bd, c, e].entries()) {
    v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", i));
  }
  const w0 = layer.base.denseWeight();
  const w = tf.add(tf.add(w0, tf.mul(w0, tf.matMul(t.ad, t.au))), tf.matMul(t.bd, t.bu));
  const b = tf.add(e, tf.reshape(tf.matMul(w0, tf.reshape(c, [-1, 1])), [-1]));
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 7) as tf.Tensor2D;
  const want = tf.add(tf.matMul(x, w, false, true), b).dataSync();
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want) < 1e-5);
  assert.ok(
    maxAbsDiff(applied.deltaWeights!().get("layers.1.attn.o")!.dataSync(), tf.sub(w, w0).dataSync()) < 1e-6,
  );
  applied.merge!();
  const merged = model.linear("layers.1.attn.o");
  assert.ok(maxAbsDiff(merged.bias!.dataSync(), b.dataSync()) < 1e-6);
  assert.ok(maxAbsDiff(merged.forward(x).dataSync(), want) < 1e-5);
});

Deno.test("glora: with q/k/v biases (Qwen2) C, D, E are created, identity at init, merge keeps the function", () => {
  const config = validateConfig({ ...TINY_CONFIG, qkvBias: true });
  const model = LlamaModel.random(config, new Rng(1), 0.2);
  for (const n of ["q", "k", "v"]) {
    const p = model.param(`layers.0.attn.${n}.bias`);
    p.assign(tf.randomNormal(p.shape, 0, 0.3, "float32", 3));
  }
  const before = logitsOf(model, tinyBatch());
  const applied = glora.apply(
    model,
    parseMethodConfig(glora, { rank: 1, targets: "q,v,o" }),
    plainContext(new Rng(2)),
  );
  assert.ok(maxAbsDiff(before, logitsOf(model, tinyBatch())) < 1e-6);
  const c = config;
  const kv = c.nKvHeads * c.headDim;
  // q: 2(16+16) + 16 (C) + 16 (E) + 16 (D); v: 2(16+8) + 16 + 8 + 8 (D); o (no bias): 2(16+16) only.
  assert.equal(
    trainableCount(applied),
    c.nLayers * ((64 + 48) + (2 * (c.dim + kv) + c.dim + 2 * kv) + 2 * (c.dim + c.dim)),
  );
  const o = model.linear("layers.0.attn.o") as GloraLinear;
  assert.deepEqual([o.t.c, o.t.d, o.t.e], [null, null, null]);
  assertTrainsRestFrozen(model, applied);
  assertMergeEquivalent(model, applied, before);
});
