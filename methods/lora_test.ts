import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { lora, rslora } from "./lora.ts";
import { getMethod, parseMethodConfig } from "./registry.ts";
import { plainContext } from "./common.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel, trainSteps } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("lora: identity at init, trains, merges to the same function", () => {
  const model = tinyModel();
  const ids = tinyBatch();
  const before = logitsOf(model, ids);
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 4, alpha: 8, targets: "q+v" }),
    plainContext(new Rng(1)),
  );
  assert.ok(maxAbsDiff(before, logitsOf(model, ids)) < 1e-6);
  const frozen = model.param("layers.0.attn.q.weight").dataSync().slice();
  const losses = trainSteps(model, applied, 5);
  assert.ok(losses[4] < losses[0], `loss did not fall: ${losses}`);
  // No gradient reached the frozen base weight.
  assert.deepEqual(model.param("layers.0.attn.q.weight").dataSync(), frozen);
  const adapted = logitsOf(model, ids);
  assert.ok(maxAbsDiff(before, adapted) > 1e-4, "training changed nothing");
  applied.merge!();
  assert.ok(maxAbsDiff(adapted, logitsOf(model, ids)) < 1e-5);
});

Deno.test("lora: trainable parameters = r (in + out) per adapted layer", () => {
  const model = tinyModel();
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 3, targets: "q+k+v+o" }),
    plainContext(new Rng(1)),
  );
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  // q: r(d+d), k: r(d+kv), v: r(d+kv), o: r(d+d)
  const expected = c.nLayers * 3 * (2 * (c.dim + c.dim) + 2 * (c.dim + kv));
  assert.equal(applied.trainable.reduce((s, v) => s + v.size, 0), expected);
  applied.dispose();
});

Deno.test("rslora scales by alpha/sqrt(r): the update is sqrt(r) times LoRA's for equal factors", () => {
  const cfg = { rank: 4, alpha: 8, targets: "q" };
  const m1 = tinyModel();
  const m2 = tinyModel();
  const a1 = lora.apply(m1, parseMethodConfig(lora, cfg), plainContext(new Rng(3)));
  const a2 = rslora.apply(m2, parseMethodConfig(rslora, cfg), plainContext(new Rng(3)));
  const b = tf.fill([TINY_CONFIG.dim, 4], 0.1);
  for (const a of [a1, a2]) for (const v of a.trainable.filter((v) => v.shape[1] === 4)) v.assign(b);
  const d1 = a1.deltaWeights!().get("layers.0.attn.q")!.dataSync();
  const d2 = a2.deltaWeights!().get("layers.0.attn.q")!.dataSync();
  for (let i = 0; i < d1.length; i += 7) assert.ok(Math.abs(d2[i] - 2 * d1[i]) < 1e-6);
});

Deno.test("lora: PEFT export names and shapes follow Hugging Face PEFT", () => {
  const model = tinyModel();
  const applied = lora.apply(model, parseMethodConfig(lora, { rank: 2 }), plainContext(new Rng(1)));
  const { config, tensors } = applied.peftExport!();
  assert.equal(config.peft_type, "LORA");
  assert.deepEqual(config.target_modules, ["q_proj", "v_proj"]);
  const a = tensors.get("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight")!;
  const b = tensors.get("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")!;
  assert.deepEqual(a.shape, [2, TINY_CONFIG.dim]);
  assert.deepEqual(b.shape, [TINY_CONFIG.nKvHeads * TINY_CONFIG.headDim, 2]);
  assert.equal(tensors.size, 2 * 2 * TINY_CONFIG.nLayers);
});

Deno.test("lora: state round-trips into a fresh application", () => {
  const m1 = tinyModel();
  const a1 = lora.apply(m1, parseMethodConfig(lora, {}), plainContext(new Rng(1)));
  trainSteps(m1, a1, 3);
  const m2 = tinyModel();
  const a2 = lora.apply(m2, parseMethodConfig(lora, {}), plainContext(new Rng(99)));
  a2.loadState(a1.state());
  assert.ok(maxAbsDiff(logitsOf(m1, tinyBatch()), logitsOf(m2, tinyBatch())) < 1e-6);
});

Deno.test("method options: unknown options, bad values, impossible ranks and unknown methods are clear errors", () => {
  assert.throws(
    () => parseMethodConfig(getMethod("frozen"), { rank: 4 }),
    /method frozen does not take option 'rank'/,
  );
  assert.throws(() => parseMethodConfig(lora, { rank: -1 }), /method lora: option 'rank'/);
  assert.throws(() => getMethod("lorax"), /unknown method 'lorax'; known methods: frozen, full, lora/);
  const model = tinyModel();
  assert.throws(
    () => lora.apply(model, parseMethodConfig(lora, { rank: 17 }), plainContext(new Rng(1))),
    /--rank 17 is impossible for layers.0.attn.q \[16x16\]: at most 16/,
  );
  assert.throws(
    () => lora.apply(model, parseMethodConfig(lora, { targets: "w9" }), plainContext(new Rng(1))),
    /no layer named/,
  );
});
