import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { promptTuning } from "./prompt_tuning.ts";
import {
  applyTiny,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("prompt-tuning: real tokens keep their output shape; the prompt is initialised from vocabulary rows", () => {
  const { model, applied } = applyTiny(promptTuning, { virtualTokens: 5 });
  const h = model.hidden(tinyBatch());
  assert.deepEqual(h.shape, [2, 8, TINY_CONFIG.dim]);
  assert.equal(logitsOf(model, tinyBatch()).length, 2 * 8 * TINY_CONFIG.vocabSize);
  // Padded batches work too (the mask gains the prompt columns).
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0]], [2, 8], "int32");
  assert.ok(Number.isFinite(model.lmLoss(tinyBatch(), { attentionMask: mask }).loss.dataSync()[0]));
  assert.equal(trainableCount(applied), 5 * TINY_CONFIG.dim);
  const table = model.param("embed.weight").arraySync() as number[][];
  const prompt = applied.trainable[0].arraySync() as number[][];
  const rows = prompt.map((p) => table.findIndex((row) => maxAbsDiff(row, p) === 0));
  assert.ok(rows.every((r) => r >= 0), `prompt rows are not embedding rows: ${rows}`);
  assert.equal(new Set(rows).size, 5, "sampled tokens should be distinct");
  // It changes the function (no identity promise).
  assert.ok(maxAbsDiff(logitsOf(tinyModel(), tinyBatch()), logitsOf(model, tinyBatch())) > 1e-4);
  applied.dispose();
  assert.equal(model.hooks.promptEmbeddings, undefined);
});

Deno.test("prompt-tuning: only the prompt gets gradients; training lowers the loss with a frozen backbone", () => {
  const { model, applied } = applyTiny(promptTuning, {});
  assert.ok([...model.params.values()].every((v) => !v.trainable));
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss);
  assert.deepEqual(Object.keys(grads), [applied.trainable[0].name]);
  assert.ok(tf.norm(grads[applied.trainable[0].name]).dataSync()[0] > 0);
  assertTrainsFrozenBase(model, applied);
  applied.dispose();
});

Deno.test("prompt-tuning: state round trip", () => assertStateRoundTrip(promptTuning, { virtualTokens: 3 }));

Deno.test("prompt-tuning: init=random is PEFT's default (a fresh nn.Embedding: N(0, 1) rows)", () => {
  const { model, applied } = applyTiny(promptTuning, { virtualTokens: 8, init: "random" });
  const values = applied.trainable[0].dataSync() as Float32Array;
  assert.equal(values.length, 8 * TINY_CONFIG.dim);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  // 128 draws: mean within 4 standard errors of 0, standard deviation near 1.
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(values.length), `mean ${mean}`);
  assert.ok(sd > 0.8 && sd < 1.2, `sd ${sd}`);
  const table = model.param("embed.weight").arraySync() as number[][];
  const prompt = applied.trainable[0].arraySync() as number[][];
  assert.ok(
    prompt.every((p) => table.every((row) => maxAbsDiff(row, p) > 0)),
    "random rows copy the vocabulary",
  );
  assert.throws(() => applyTiny(promptTuning, { init: "text" }), /init/);
  applied.dispose();
});
