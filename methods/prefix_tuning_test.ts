import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { type AppliedPrefixTuning, prefixTuning } from "./prefix_tuning.ts";
import {
  applyTiny,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

const KV = TINY_CONFIG.nKvHeads * TINY_CONFIG.headDim;

Deno.test("prefix-tuning: shapes unchanged, prefixes [p, kvDim] per layer, parameter count", () => {
  const { model, applied } = applyTiny(prefixTuning, { virtualTokens: 3, prefixHidden: 5 });
  assert.deepEqual(model.hidden(tinyBatch()).shape, [2, 8, TINY_CONFIG.dim]);
  const prefixes = (applied as AppliedPrefixTuning).prefixes();
  assert.equal(prefixes.length, TINY_CONFIG.nLayers);
  for (const p of prefixes) assert.deepEqual([p.k.shape, p.v.shape], [[3, KV], [3, KV]]);
  const { dim: d, nLayers: l } = TINY_CONFIG;
  assert.equal(trainableCount(applied), 3 * d + 5 * d + 5 + 2 * l * KV * 5 + 2 * l * KV);
  assert.ok(maxAbsDiff(logitsOf(tinyModel(), tinyBatch()), logitsOf(model, tinyBatch())) > 1e-4);
  applied.dispose();
  assert.equal(model.hooks.kvPrefix, undefined);
});

Deno.test("prefix-tuning: gradients reach every reparametrisation tensor and nothing else; loss falls", () => {
  const { model, applied } = applyTiny(prefixTuning, {});
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss);
  assert.deepEqual(Object.keys(grads).sort(), applied.trainable.map((v) => v.name).sort());
  for (const g of Object.values(grads)) assert.ok(tf.norm(g).dataSync()[0] > 0);
  assertTrainsFrozenBase(model, applied);
  applied.dispose();
});

Deno.test("prefix-tuning: materialised prefixes give the same function as the MLP", () => {
  const { model, applied } = applyTiny(prefixTuning, { virtualTokens: 4 });
  const before = logitsOf(model, tinyBatch());
  (applied as AppliedPrefixTuning).materialize();
  assert.ok(maxAbsDiff(before, logitsOf(model, tinyBatch())) < 1e-6);
  applied.dispose();
});

Deno.test("prefix-tuning: state round trip", () => assertStateRoundTrip(prefixTuning, { virtualTokens: 2 }));
