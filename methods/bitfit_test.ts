import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { BiasLinear, bitfit } from "./bitfit.ts";
import { plainContext } from "./common.ts";
import { assertMergeEquivalent, assertTrainsRestFrozen, checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("bitfit: identity at init, trains, frozen base, state round trip, merges into biases", () => {
  const { model } = checkContract(bitfit, {});
  const o = model.linear("layers.1.attn.o");
  assert.ok(!(o instanceof BiasLinear));
  assert.ok(o.bias!.dataSync().some((x) => x !== 0), "merged layer carries the trained bias");
});

Deno.test("bitfit: one bias per target output; takes no rank", () => {
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  const { applied } = applyTiny(bitfit, {});
  assert.equal(trainableCount(applied), c.nLayers * (3 * c.dim + 2 * kv + 2 * c.hiddenDim));
  assert.ok(applied.trainable.every((v) => v.dataSync().every((x) => x === 0)));
  applied.dispose();
  assert.throws(() => parseMethodConfig(bitfit, { rank: 4 }), /method bitfit does not take option 'rank'/);
});

Deno.test("bitfit: existing q/k/v biases (Qwen2) train in place; flags restored on dispose", () => {
  const config = validateConfig({ ...TINY_CONFIG, qkvBias: true });
  const model = LlamaModel.random(config, new Rng(1), 0.2);
  const qb = model.param("layers.0.attn.q.bias");
  qb.assign(tf.randomNormal(qb.shape, 0, 0.3, "float32", 3));
  const before = logitsOf(model, tinyBatch());
  const applied = bitfit.apply(model, parseMethodConfig(bitfit, {}), plainContext(new Rng(2)));
  assert.ok(maxAbsDiff(before, logitsOf(model, tinyBatch())) < 1e-6);
  assert.ok(applied.trainable.includes(qb) && qb.trainable);
  assert.ok(!(model.linear("layers.0.attn.q") instanceof BiasLinear));
  assert.ok(model.linear("layers.0.attn.o") instanceof BiasLinear);
  const c = config;
  const kv = c.nKvHeads * c.headDim;
  assert.equal(trainableCount(applied), c.nLayers * (3 * c.dim + 2 * kv + 2 * c.hiddenDim));
  const q0 = qb.dataSync().slice();
  assertTrainsRestFrozen(model, applied);
  assert.ok(maxAbsDiff(q0, qb.dataSync()) > 0, "the existing bias trained");
  assert.deepEqual([...applied.state().keys()].slice(0, 3), [
    "layers.0.attn.q.bias",
    "layers.0.attn.k.bias",
    "layers.0.attn.v.bias",
  ]);
  assertMergeEquivalent(model, applied, before);
  applied.dispose();
  assert.equal(qb.trainable, false);
  assert.equal(qb.isDisposed, false);
});
