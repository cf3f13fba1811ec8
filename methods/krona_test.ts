import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { krona } from "./krona.ts";
import { KronLinear } from "./lokr.ts";
import { kronDense } from "./kron.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("krona: identity at init, trains, frozen base, state round trip, merges", () => {
  checkContract(krona, { targets: "all-linear", scale: 2 });
});

Deno.test("krona: full factors sized by closest-to-sqrt splits; count = outL inM + outK inN", () => {
  const c = TINY_CONFIG;
  // q,o [16,16]: 4x4 + 4x4; k,v [8,16]: 2x4 + 4x4; gate,up [24,16]: 4x4 + 6x4; down [16,24]: 4x4 + 4x6.
  const { model, applied } = applyTiny(krona, { targets: "all-linear" });
  assert.equal(trainableCount(applied), c.nLayers * (2 * 32 + 2 * 24 + 3 * 40));
  const k = model.linear("layers.1.attn.k") as KronLinear;
  assert.deepEqual(k.w1.shape, [2, 4]);
  assert.deepEqual(k.w2[0].shape, [4, 4]);
  assert.ok(k.w2[0].dataSync().every((x) => x === 0), "B starts at zero");
  assert.ok(k.w1.dataSync().some((x) => x !== 0), "A is random");
  applied.dispose();
});

Deno.test("krona: the vec-trick forward equals x (W + s kron(A, B))^T", () => {
  const { model, applied } = applyTiny(krona, { targets: "up", scale: 0.5 });
  const layer = model.linear("layers.0.mlp.up") as KronLinear;
  layer.w2[0].assign(tf.randomNormal(layer.w2[0].shape, 0, 1, "float32", 4));
  const x = tf.randomNormal([6, TINY_CONFIG.dim], 0, 1, "float32", 5) as tf.Tensor2D;
  const w = tf.add(
    layer.base.denseWeight(),
    tf.mul(kronDense(layer.w1 as tf.Tensor2D, layer.w2[0] as tf.Tensor2D), 0.5),
  );
  const want = tf.matMul(x, w, false, true).dataSync();
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want) < 1e-5);
  assert.throws(() => applyTiny(krona, { rank: 4 }), /method krona does not take option 'rank'/);
  applied.dispose();
});
