import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { houlsby } from "./houlsby.ts";
import { plainContext } from "./common.ts";
import { Rng } from "../models/util/rng.ts";
import { geluTanh } from "./bottleneck.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("houlsby: identity at init (gelu and relu)", () => {
  assertIdentityAtInit(houlsby, {});
  assertIdentityAtInit(houlsby, { bottleneck: 4, activation: "relu" });
});

Deno.test("houlsby: trainable parameters = L * 2 (2 d b + b + d)", () => {
  const { applied } = applyTiny(houlsby, { bottleneck: 6 });
  const { dim: d, nLayers: l } = TINY_CONFIG;
  assert.equal(trainableCount(applied), l * 2 * (2 * d * 6 + 6 + d));
  applied.dispose();
});

Deno.test("houlsby: trains with a frozen base, changes the function, and dispose restores the model", () => {
  const { model, applied } = applyTiny(houlsby, { bottleneck: 4 });
  assertTrainsFrozenBase(model, applied);
  const plain = logitsOf(tinyModel(), tinyBatch());
  assert.ok(maxAbsDiff(plain, logitsOf(model, tinyBatch())) > 1e-4, "training changed nothing");
  applied.dispose();
  assert.equal(model.hooks.sublayerOutput, undefined);
  assert.ok(maxAbsDiff(plain, logitsOf(model, tinyBatch())) < 1e-6);
});

Deno.test("houlsby: state round trip", () => assertStateRoundTrip(houlsby, { bottleneck: 4 }));

Deno.test("houlsby: GELU tanh approximation matches reference values; hook slot is exclusive", () => {
  const y = geluTanh(tf.tensor1d([-2, -0.5, 0, 1, 3])).dataSync();
  const ref = [-0.04540230591222, -0.15428599017, 0, 0.84119199060, 2.99636273]; // tanh-GELU
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y[i] - ref[i]) < 1e-5, `${i}: ${y[i]}`);
  const { model, applied } = applyTiny(houlsby, {});
  assert.throws(
    () => houlsby.apply(model, { bottleneck: 2, activation: "gelu" }, plainContext(new Rng(2))),
    /already used/,
  );
  applied.dispose();
});
