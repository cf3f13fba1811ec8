/**
 * P-tuning against PEFT's `PromptEncoder` (MLP): the prompt equals Linear-ReLU-Linear-ReLU-Linear of
 * the embedding written out in loops; torch's default inits; only the encoder trains; the exported
 * `prompt_embeddings`, used as a plain soft prompt (PEFT's inference mode), gives the same logits.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { type AppliedPTuning, pTuning } from "./p_tuning.ts";
import { promptTuning } from "./prompt_tuning.ts";
import { applyTiny, assertStateRoundTrip, assertTrainsFrozenBase } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** y = W x + b for a row x, W [out, in]. */
function dense(x: ArrayLike<number>, w: Float32Array, b: Float32Array): number[] {
  const inF = x.length;
  return Array.from(b, (bo, o) => {
    let s = bo;
    for (let k = 0; k < inF; k++) s += w[o * inF + k] * x[k];
    return s;
  });
}

const relu = (v: number[]) => v.map((x) => Math.max(0, x));

Deno.test("p-tuning: the prompt is PEFT's mlp_head (Linear, ReLU, Linear, ReLU, Linear) of the embedding", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 3, encoderHidden: 5 });
  const s = applied.state();
  const t = (k: string) => s.get(`prompt_encoder.${k}`)!.data;
  const d = TINY_CONFIG.dim;
  const want: number[] = [];
  for (let j = 0; j < 3; j++) {
    const e = t("embedding.weight").subarray(j * d, (j + 1) * d);
    const h1 = relu(dense(e, t("mlp_head.0.weight"), t("mlp_head.0.bias")));
    const h2 = relu(dense(h1, t("mlp_head.2.weight"), t("mlp_head.2.bias")));
    want.push(...dense(h2, t("mlp_head.4.weight"), t("mlp_head.4.bias")));
  }
  const p = (applied as AppliedPTuning).prompt();
  assert.deepEqual(p.shape, [3, d]);
  assert.ok(maxAbsDiff(p.dataSync(), want) < 1e-5, `prompt differs by ${maxAbsDiff(p.dataSync(), want)}`);
  assert.deepEqual(
    [...s].map(([k, a]) => [k, a.shape]),
    [
      ["prompt_encoder.embedding.weight", [3, d]],
      ["prompt_encoder.mlp_head.0.weight", [5, d]],
      ["prompt_encoder.mlp_head.0.bias", [5]],
      ["prompt_encoder.mlp_head.2.weight", [5, 5]],
      ["prompt_encoder.mlp_head.2.bias", [5]],
      ["prompt_encoder.mlp_head.4.weight", [d, 5]],
      ["prompt_encoder.mlp_head.4.bias", [d]],
    ],
  );
  p.dispose();
  applied.dispose();
  assert.equal(model.hooks.promptEmbeddings, undefined);
  model.dispose();
});

Deno.test("p-tuning: torch inits (embedding N(0, 1); Linear weight and bias U(+-1/sqrt(fan_in))); defaults 20 tokens, h = dim", () => {
  const cfg = validateConfig({ ...TINY_CONFIG, dim: 64, nHeads: 4, nKvHeads: 2 });
  const c = parseMethodConfig(pTuning, {});
  assert.equal(c.virtualTokens, 20);
  assert.equal(pTuning.contract!.parameterCount(cfg, c), 20 * 64 + (64 * 64 + 64) * 3);
  const { applied } = applyTiny(pTuning, {});
  const s = applied.state();
  const e = s.get("prompt_encoder.embedding.weight")!.data;
  assert.equal(e.length, 20 * TINY_CONFIG.dim);
  const mean = e.reduce((a, x) => a + x, 0) / e.length;
  const sd = Math.sqrt(e.reduce((a, x) => a + (x - mean) ** 2, 0) / e.length);
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(e.length) && sd > 0.9 && sd < 1.1, `mean ${mean} sd ${sd}`);
  for (const [k, fanIn] of [["0", 16], ["2", 16], ["4", 16]] as const) {
    for (const part of ["weight", "bias"]) {
      const a = s.get(`prompt_encoder.mlp_head.${k}.${part}`)!.data;
      const bound = 1 / Math.sqrt(fanIn);
      const max = Math.max(...a.map(Math.abs));
      // Inside the bound, and spread over it (the largest of >= 16 uniform draws is above bound/2).
      assert.ok(max <= bound && max > bound / 2, `${k}.${part}: max |x| ${max} vs bound ${bound}`);
    }
  }
  applied.dispose();
});

Deno.test("p-tuning: only the encoder gets gradients; training lowers the loss with a frozen backbone", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 4, encoderHidden: 8 });
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss);
  assert.deepEqual(Object.keys(grads).sort(), applied.trainable.map((v) => v.name).sort());
  assertTrainsFrozenBase(model, applied);
  applied.dispose();
  model.dispose();
});

Deno.test("p-tuning: state round trip", () =>
  assertStateRoundTrip(pTuning, { virtualTokens: 3, encoderHidden: 4 }));

Deno.test("p-tuning: PEFT export is the encoder output as prompt_embeddings; as a plain soft prompt it gives the same logits", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 3, encoderHidden: 6 });
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "P_TUNING");
  assert.equal(e.config.encoder_reparameterization_type, "MLP");
  assert.deepEqual([e.config.num_virtual_tokens, e.config.token_dim, e.config.encoder_hidden_size], [
    3,
    16,
    6,
  ]);
  assert.deepEqual([...e.tensors.keys()], ["prompt_embeddings"]);
  const saved = e.tensors.get("prompt_embeddings")!;
  assert.deepEqual(saved.shape, [3, TINY_CONFIG.dim]);
  // PEFT's inference mode: the saved rows are the prompt, no encoder.
  const plain = tinyModel();
  const prompt = promptTuning.apply(
    plain,
    parseMethodConfig(promptTuning, { virtualTokens: 3 }),
    plainContext(new Rng(1)),
  );
  prompt.loadState(new Map([["prompt_embeddings", saved]]));
  const d = maxAbsDiff(logitsOf(model, tinyBatch()), logitsOf(plain, tinyBatch()));
  assert.ok(d < 1e-6, `the exported prompt gives other logits (${d})`);
  prompt.dispose();
  applied.dispose();
  plain.dispose();
  model.dispose();
});
