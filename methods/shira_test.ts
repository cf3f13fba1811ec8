/**
 * SHiRA: the mask (exactly r (in + out) distinct positions, uniform over the entries), the update
 * only at those positions and of full rank beyond r, the forward against (W + dW) x in plain arrays,
 * gradients only at masked entries, identity at init, count, merge, state round trip with the mask.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { randomMaskIndices, shira, ShiraLinear } from "./shira.ts";
import { assertMergeEquivalent } from "./contract_test_utils.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

const OPTS = { targets: "v,down", rank: 2 };

Deno.test("shira: the random mask is K distinct ascending positions, uniform over the entries", () => {
  const idx = randomMaskIndices(new Rng(3), 100, 40);
  assert.equal(new Set(idx).size, 40);
  assert.ok(idx.every((v, i) => v >= 0 && v < 100 && (i === 0 || v > idx[i - 1])));
  // K = size: every position; and over many draws each position is picked with frequency K / size.
  assert.deepEqual([...randomMaskIndices(new Rng(4), 10, 10)], [...Array(10).keys()]);
  const hits = new Float64Array(20);
  for (let s = 0; s < 4000; s++) randomMaskIndices(new Rng(s), 20, 5).forEach((v) => hits[v]++);
  // Expected 1000 each; binomial sd ~ 27: 5 sd.
  assert.ok(hits.every((h) => Math.abs(h - 1000) < 140), `uneven mask: ${hits}`);
});

Deno.test("shira: dW holds w at the mask only, has rank above r, and y = (W + dW) x", () => {
  const { model, applied } = applyTiny(shira, OPTS);
  const layer = model.linear("layers.1.mlp.down") as ShiraLinear; // [16 x 24], K = 2 * 40 = 80
  assert.equal(layer.weight.size, 80);
  const w = new Rng(9).normalArray(80, 1);
  layer.weight.assign(tf.tensor1d(w));
  const idx = layer.indices.dataSync();
  const dense = new Float64Array(16 * 24);
  idx.forEach((f, i) => (dense[f] = w[i]));
  const delta = layer.delta();
  assert.ok(maxAbsDiff(delta.dataSync(), dense) < 1e-7);
  // Rank: 80 random entries of a 16 x 24 matrix are full rank (16) w.p. ~1, far above r = 2.
  const s = tf.linalg.qr(tf.transpose(delta))[1].arraySync() as number[][];
  const rank = s.filter((row, i) => Math.abs(row[i]) > 1e-5).length;
  assert.ok(rank > 2, `rank ${rank}`);
  const x = tf.randomNormal([3, 24], 0, 1, "float32", 2) as tf.Tensor2D;
  const wBase = layer.base.denseWeight().arraySync();
  const want = x.arraySync().map((row) =>
    wBase.map((wr, o) => wr.reduce((acc, v, i) => acc + (v + dense[o * 24 + i]) * row[i], 0))
  );
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.flat()) < 1e-4);
  // Gradients reach w only (the frozen W gets none; every w entry is used).
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(layer.forward(x))) as tf.Scalar, [layer.weight]);
  assert.ok((grads[layer.weight.name].dataSync() as Float32Array).some((g) => g !== 0));
  applied.dispose();
});

Deno.test("shira: identity at init, r (in + out) per layer, trains with base frozen, merges, state keeps the mask", () => {
  assertIdentityAtInit(shira, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  const { model, applied } = applyTiny(shira, OPTS);
  const init = logitsOf(model, tinyBatch());
  assert.equal(trainableCount(applied), c.nLayers * 2 * ((c.dim + kv) + (c.hiddenDim + c.dim)));
  assertTrainsFrozenBase(model, applied);
  assertMergeEquivalent(model, applied, init);
  assertStateRoundTrip(shira, OPTS);
  // Another seed draws another mask.
  const a = applyTiny(shira, OPTS, 1);
  const b = applyTiny(shira, OPTS, 2);
  const ia = (a.model.linear("layers.0.attn.v") as ShiraLinear).indices.dataSync();
  const ib = (b.model.linear("layers.0.attn.v") as ShiraLinear).indices.dataSync();
  assert.ok(maxAbsDiff(ia, ib) > 0);
  a.applied.dispose();
  b.applied.dispose();
  assert.deepEqual(shira.schema.parse({}), { targets: "q+v", rank: 32 });
  // v is [8 x 16]: r = 6 asks 144 > 128 entries.
  assert.throws(
    () => applyTiny(shira, { targets: "v", rank: 6 }),
    /--rank 6 asks for 144 entries of layers.0.attn.v/,
  );
});
