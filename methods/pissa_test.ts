import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { pissa } from "./pissa.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { Rng } from "../models/util/rng.ts";
import type { LoraLinear } from "./lora.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG, tinyModel } from "./tiny_test_utils.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_test_utils.ts";

await initBackend("cpu");

const OPTS = { rank: 4, alpha: 8, targets: "q+v" };

Deno.test("pissa: the function is unchanged at init (float error), trains, merges to the same function", () => {
  assertIdentityTrainsMerges(pissa, OPTS, 1e-5);
});

Deno.test("pissa: residual + s B A reconstructs W, and s B A is the best rank-r part of W", () => {
  const { model, applied } = applyTiny(pissa, OPTS);
  for (const name of ["layers.0.attn.q", "layers.1.attn.v"]) {
    const layer = model.linear(name) as LoraLinear;
    const w = model.param(`${name}.weight`);
    const sum = tf.add(layer.base.denseWeight(), layer.delta());
    assert.ok(maxAbsDiff(sum.dataSync(), w.dataSync()) < 1e-5, name);
    // The residual has no component along the adapter's top singular directions: B^T W_res = 0.
    const proj = tf.matMul(layer.b, layer.base.denseWeight(), true, false);
    assert.ok(maxAbsDiff(proj.dataSync(), new Float32Array(proj.size)) < 1e-5, name);
  }
  // At init the reported update (relative to W) is zero.
  for (const d of applied.deltaWeights!().values()) assert.ok(Math.max(...d.dataSync().map(Math.abs)) < 1e-6);
  applied.dispose();
});

Deno.test("pissa: trainable parameters = r (in + out) per layer; state round trip", () => {
  const { applied } = applyTiny(pissa, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  assert.equal(trainableCount(applied), c.nLayers * OPTS.rank * (2 * c.dim + c.dim + kv));
  applied.dispose();
  assertStateRoundTrip(pissa, OPTS);
});

Deno.test("pissa: PEFT export is the rank-2r LoRA of the update on the original weights", () => {
  const { model, applied } = applyTiny(pissa, OPTS);
  const { config, tensors } = applied.peftExport!();
  assert.equal(config.r, 2 * OPTS.rank);
  assert.equal(config.lora_alpha, 2 * OPTS.alpha);
  // At init the exported LoRA's update B'A' vanishes.
  const m = "base_model.model.model.layers.0.self_attn.q_proj";
  const a = tensors.get(`${m}.lora_A.weight`)!;
  const b = tensors.get(`${m}.lora_B.weight`)!;
  assert.deepEqual(a.shape, [2 * OPTS.rank, TINY_CONFIG.dim]);
  const prod = tf.matMul(
    tf.tensor2d(b.data, b.shape as [number, number]),
    tf.tensor2d(a.data, a.shape as [number, number]),
  );
  assert.ok(Math.max(...prod.dataSync().map(Math.abs)) < 1e-5);
  applied.dispose();
  model.dispose();
});

Deno.test("pissa: the residual base is built through ctx.makeFrozenLinear (quantized under QLoRA)", () => {
  const model = tinyModel();
  const ctx = plainContext(new Rng(1));
  const built: string[] = [];
  const make = ctx.makeFrozenLinear;
  ctx.makeFrozenLinear = (name, w, bias) => {
    built.push(name);
    return make(name, w, bias);
  };
  const applied = pissa.apply(model, parseMethodConfig(pissa, OPTS), ctx);
  assert.deepEqual(built, ["layers.0.attn.q", "layers.0.attn.v", "layers.1.attn.q", "layers.1.attn.v"]);
  applied.dispose();
});
