import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { ia3, Ia3Linear } from "./ia3.ts";
import { plainContext } from "./common.ts";
import { assertMergeEquivalent, assertTrainsRestFrozen, checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("ia3: identity at init, trains, frozen base, state round trip, merges", () => {
  checkContract(ia3, {});
});

Deno.test("ia3: vectors of ones; 2 kv_dim + hidden per layer with the defaults", () => {
  const c = TINY_CONFIG;
  const { model, applied } = applyTiny(ia3, {});
  assert.equal(trainableCount(applied), c.nLayers * (2 * c.nKvHeads * c.headDim + c.hiddenDim));
  const down = model.linear("layers.0.mlp.down") as Ia3Linear;
  const k = model.linear("layers.0.attn.k") as Ia3Linear;
  assert.ok(down.feedforward && !k.feedforward);
  assert.deepEqual(down.l.shape, [c.hiddenDim]);
  assert.deepEqual(k.l.shape, [c.nKvHeads * c.headDim]);
  assert.ok(applied.trainable.every((v) => v.dataSync().every((x) => x === 1)));
  applied.dispose();
});

Deno.test("ia3: output scaling folds into rows, input scaling into columns", () => {
  const { model, applied } = applyTiny(ia3, { targets: "v,down" });
  const v = model.linear("layers.0.attn.v") as Ia3Linear;
  const down = model.linear("layers.0.mlp.down") as Ia3Linear;
  v.l.assign(tf.randomUniform(v.l.shape, 0.5, 1.5, "float32", 1));
  down.l.assign(tf.randomUniform(down.l.shape, 0.5, 1.5, "float32", 2));
  const wv = v.base.denseWeight().arraySync();
  const wd = down.base.denseWeight().arraySync();
  const lv = v.l.arraySync() as number[];
  const ld = down.l.arraySync() as number[];
  const deltas = applied.deltaWeights!();
  const dv = deltas.get("layers.0.attn.v")!.arraySync();
  const dd = deltas.get("layers.0.mlp.down")!.arraySync();
  assert.ok(Math.abs(dv[3][5] - wv[3][5] * (lv[3] - 1)) < 1e-6);
  assert.ok(Math.abs(dd[3][5] - wd[3][5] * (ld[5] - 1)) < 1e-6);
  const x = tf.randomNormal([2, TINY_CONFIG.hiddenDim], 0, 1, "float32", 3) as tf.Tensor2D;
  const want = tf.matMul(tf.mul(x, down.l), down.base.denseWeight(), false, true).dataSync();
  assert.ok(maxAbsDiff(down.forward(x).dataSync(), want) < 1e-5);
  applied.dispose();
});

Deno.test("ia3: feedforward must be among the targets; '' scales outputs only", () => {
  assert.throws(
    () => applyTiny(ia3, { targets: "k,v" }),
    /--opt feedforward=down: layers.0.mlp.down is not among --targets k,v/,
  );
  const { applied } = applyTiny(ia3, { targets: "q,down", feedforward: "" });
  const c = TINY_CONFIG;
  assert.equal(trainableCount(applied), c.nLayers * (c.dim + c.dim));
  applied.dispose();
});

Deno.test("ia3: with k/v biases (Qwen2) the output scaling also scales the bias, and merges", () => {
  const config = validateConfig({ ...TINY_CONFIG, qkvBias: true });
  const model = LlamaModel.random(config, new Rng(1), 0.2);
  const p = model.param("layers.1.attn.v.bias");
  p.assign(tf.randomNormal(p.shape, 0, 0.3, "float32", 3));
  const before = logitsOf(model, tinyBatch());
  const applied = ia3.apply(model, parseMethodConfig(ia3, {}), plainContext(new Rng(2)));
  assertTrainsRestFrozen(model, applied);
  assertMergeEquivalent(model, applied, before);
});
