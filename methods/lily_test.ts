/**
 * Lily: the forward against PEFT's `lily.layer.Linear.forward` written out in plain arrays (router
 * softmax per token, averaged over every token, experts mixed, scaled), the sharing of
 * `_post_injection_hook` (A per block of strideA layers of one kind, B per kind, own routers),
 * identity at init, the count, training with the base frozen and the state round trip.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { lily, LilyLinear } from "./lily.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

const OPTS = { targets: "v,down", rank: 3, strideA: 2, numB: 3, scaling: 0.5 };

const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i], 0);

Deno.test("lily: forward is W x + s h sum_e mean_N(softmax(h R^T))_e B_e, as PEFT's Linear.forward", () => {
  const { model, applied } = applyTiny(lily, OPTS);
  const layer = model.linear("layers.1.mlp.down") as LilyLinear; // [16 x 24]
  // B is zero at init (PEFT): give it values so the experts' mixture is seen.
  layer.b.assign(tf.tensor(new Rng(5).normalArray(layer.b.size, 0.3), layer.b.shape));
  const x = tf.randomNormal([5, 24], 0, 1, "float32", 3) as tf.Tensor2D;
  const xs = x.arraySync();
  const a = layer.a.arraySync() as number[][];
  const rt = layer.router.arraySync() as number[][];
  const b = layer.b.arraySync() as number[][]; // [numB r, out], rows e*r..e*r+r-1 are expert e
  const h = xs.map((row) => a.map((ai) => dot(row, ai)));
  const p = [0, 0, 0];
  for (const hn of h) {
    const z = rt.map((re) => dot(hn, re));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((s, v) => s + v, 0);
    e.forEach((v, i) => (p[i] += v / sum / h.length));
  }
  const combined = Array.from(
    { length: 3 },
    (_, i) => Array.from({ length: 16 }, (_, o) => p.reduce((s, pe, e) => s + pe * b[e * 3 + i][o], 0)),
  );
  const base = layer.base.forward(x).arraySync();
  const want = h.map((hn, n) =>
    base[n].map((v, o) => v + 0.5 * hn.reduce((s, hi, i) => s + hi * combined[i][o], 0))
  );
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.flat()) < 1e-5);
  // The update depends on the batch: one row alone gets a different mixture than with the others.
  const alone = layer.forward(tf.slice(x, [0, 0], [1, 24]) as tf.Tensor2D).dataSync();
  assert.ok(maxAbsDiff(alone, want[0]) > 1e-6);
  applied.dispose();
});

Deno.test("lily: A shared per strideA block of one kind, B per kind, routers per layer; grads reach the shared A", () => {
  const { model, applied } = applyTiny(lily, { ...OPTS, targets: "q,v", strideA: 2 });
  const q0 = model.linear("layers.0.attn.q") as LilyLinear;
  const q1 = model.linear("layers.1.attn.q") as LilyLinear;
  const v0 = model.linear("layers.0.attn.v") as LilyLinear;
  const v1 = model.linear("layers.1.attn.v") as LilyLinear;
  assert.equal(q0.a, q1.a);
  assert.equal(q0.b, q1.b);
  assert.equal(v0.a, v1.a);
  assert.notEqual(q0.a, v0.a);
  assert.notEqual(q0.b, v0.b);
  assert.notEqual(q0.router, q1.router);
  // Kaiming uniform (a = sqrt 5): |A| <= 1/sqrt(in), |R| <= 1/sqrt(r); B zero.
  assert.ok(Math.max(...(q0.a.dataSync() as Float32Array).map(Math.abs)) <= 1 / Math.sqrt(16));
  assert.ok(Math.max(...(q0.router.dataSync() as Float32Array).map(Math.abs)) <= 1 / Math.sqrt(3));
  assert.ok((q0.b.dataSync() as Float32Array).every((v) => v === 0));
  // 2 q layers [16x16] share one A and one B; same for v [8x16]: 2 (r in + numB r out) + 4 numB r.
  assert.equal(trainableCount(applied), 3 * 16 + 3 * 3 * 16 + (3 * 16 + 3 * 3 * 8) + 4 * 3 * 3);
  // The second layer's loss alone moves the shared A (once B is non-zero).
  q1.b.assign(tf.onesLike(q1.b));
  const x = tf.randomNormal([4, 16], 0, 1, "float32", 8) as tf.Tensor2D;
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(q1.forward(x))) as tf.Scalar, [q0.a]);
  assert.ok(Math.max(...(grads[q0.a.name].dataSync() as Float32Array).map(Math.abs)) > 0);
  applied.dispose();
  // strideA 1 (PEFT's default): every layer has its own A.
  const own = applyTiny(lily, { ...OPTS, targets: "q", strideA: 1 });
  assert.notEqual(
    (own.model.linear("layers.0.attn.q") as LilyLinear).a,
    (own.model.linear("layers.1.attn.q") as LilyLinear).a,
  );
  own.applied.dispose();
});

Deno.test("lily: identity at init, trains with the base frozen, state round trip, not mergeable", () => {
  assertIdentityAtInit(lily, OPTS);
  assertStateRoundTrip(lily, OPTS);
  const { model, applied } = applyTiny(lily, OPTS);
  assertTrainsFrozenBase(model, applied);
  assert.equal(applied.merge, undefined);
  assert.equal(lily.mergeable, false);
  applied.dispose();
  // PEFT defaults.
  const d = lily.schema.parse({});
  assert.deepEqual(d, { targets: "q+v", rank: 32, strideA: 1, numB: 2, scaling: 1 });
  assert.equal(TINY_CONFIG.nLayers, 2);
});
