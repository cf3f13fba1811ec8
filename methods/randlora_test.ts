/**
 * RandLoRA: dW against PEFT's `get_scaled_bases` / `get_delta_weight` written out element by element
 * (lambda[i, k] A[i, d] gamma[k, d] paired with B[m, k, j] through PEFT's flattenings), both
 * orientations (in <= out and in > out), full rank beyond r, the shared unit-std bases, identity at
 * init, the count, training with the base frozen, merge and the state round trip.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { numBases, randlora, RandloraLinear } from "./randlora.ts";
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

const OPTS = { targets: "v,down,up", rank: 5, alpha: 10 };

/** PEFT's dW for one layer, from its tensors, in plain arrays. */
function peftDelta(l: RandloraLinear): number[][] {
  const a = l.a.arraySync(); // [r, lo]
  const b = l.b.arraySync(); // [hi, n, r]
  const lam = l.lambda.arraySync() as number[][]; // [r, n]
  const gam = l.gamma.arraySync() as number[][]; // [n, lo]
  const [r, n] = [lam.length, lam[0].length];
  const [hi, lo] = [b.length, a[0].length];
  const c = r * n;
  // UA row c = i n + k (flatten(end_dim=1) of [r, n, lo]); UB column c = k r + j (flatten(start_dim=1) of [hi, n, r]).
  const ua = Array.from({ length: c }, (_, row) => {
    const [i, k] = [Math.floor(row / n), row % n];
    return a[i].map((ad, d) => lam[i][k] * ad * gam[k][d]);
  });
  const ub = b.map((bm) => Array.from({ length: c }, (_, col) => bm[Math.floor(col / r)][col % r]));
  const m = Array.from(
    { length: hi },
    (_, p) =>
      Array.from({ length: lo }, (_, q) => ub[p].reduce((s, v, t) => s + v * ua[t][q], 0) * l.scaling),
  );
  return l.inFeatures <= l.outFeatures ? m : m[0].map((_, q) => m.map((row) => row[q]));
}

Deno.test("randlora: dW is PEFT's s (UB UA) or its transpose, full rank, and the forward adds dW x", () => {
  const { model, applied } = applyTiny(randlora, OPTS);
  for (const name of ["layers.1.mlp.down", "layers.0.mlp.up", "layers.0.attn.v"]) {
    const l = model.linear(name) as RandloraLinear;
    const rng = new Rng(11).fork(name);
    l.lambda.assign(tf.tensor(rng.normalArray(l.lambda.size, 1), l.lambda.shape));
    l.gamma.assign(tf.tensor(rng.normalArray(l.gamma.size, 1), l.gamma.shape));
    const want = peftDelta(l);
    const got = l.delta();
    assert.deepEqual(got.shape, [l.outFeatures, l.inFeatures]);
    assert.ok(maxAbsDiff(got.dataSync(), want.flat()) < 1e-4, name);
    // Full rank: min(in, out) > r (QR's diagonal of the tall orientation).
    const tall = l.inFeatures <= l.outFeatures ? got : tf.transpose(got);
    const rdiag = (tf.linalg.qr(tall)[1].arraySync() as number[][]).map((row, i) => Math.abs(row[i]));
    const rank = rdiag.filter((v) => v > 1e-4 * Math.max(...rdiag)).length;
    assert.equal(rank, Math.min(l.inFeatures, l.outFeatures), `${name} rank ${rank}`);
    assert.ok(rank > 5);
    const x = tf.randomNormal([3, l.inFeatures], 0, 1, "float32", 4) as tf.Tensor2D;
    const wantY = tf.add(l.base.forward(x), tf.matMul(x, tf.tensor2d(want), false, true));
    assert.ok(maxAbsDiff(l.forward(x).dataSync(), wantY.dataSync()) < 1e-3);
  }
  applied.dispose();
});

Deno.test("randlora: one pair of unit-std bases from projectionPrngKey, sliced per layer; PEFT's init", () => {
  const { model, applied } = applyTiny(randlora, OPTS);
  const down = model.linear("layers.1.mlp.down") as RandloraLinear; // [16 x 24]: lo 16, hi 24
  const v = model.linear("layers.0.attn.v") as RandloraLinear; // [8 x 16]: lo 8, hi 16
  // v's bases are the leading slices of down's (largest shape (24, 24) here: hi 24, lo 24 from up/down).
  const va = v.a.arraySync();
  const da = down.a.arraySync();
  va.forEach((row, i) => assert.deepEqual(row, da[i].slice(0, 8)));
  assert.deepEqual(v.b.arraySync()[3][1], down.b.arraySync()[3][1]);
  assert.equal(v.lambda.shape[1], numBases(16, 8, 5));
  assert.equal(numBases(16, 8, 5), 2);
  assert.equal(numBases(24, 16, 5), 4);
  // lambda zero, gamma 1 / max(n, lo).
  assert.ok((down.lambda.dataSync() as Float32Array).every((x) => x === 0));
  assert.ok((down.gamma.dataSync() as Float32Array).every((x) => Math.abs(x - 1 / 16) < 1e-9));
  assert.equal(down.scaling, 2);
  // The bases depend on projectionPrngKey only, not on the run seed.
  const other = applyTiny(randlora, OPTS, 77);
  assert.deepEqual(
    (other.model.linear("layers.1.mlp.down") as RandloraLinear).b.dataSync(),
    down.b.dataSync(),
  );
  other.applied.dispose();
  const keyed = applyTiny(randlora, { ...OPTS, projectionPrngKey: 3 });
  assert.ok(
    maxAbsDiff((keyed.model.linear("layers.1.mlp.down") as RandloraLinear).b.dataSync(), down.b.dataSync()) >
      0.1,
  );
  keyed.applied.dispose();
  applied.dispose();
  // Std-normalised over the whole shared tensor: with up alone, the layer's B is all of it.
  const big = applyTiny(randlora, { targets: "up", rank: 5 });
  const bb = (big.model.linear("layers.0.mlp.up") as RandloraLinear).b.dataSync() as Float32Array;
  const mean = bb.reduce((s, x) => s + x, 0) / bb.length;
  const sd = Math.sqrt(bb.reduce((s, x) => s + (x - mean) ** 2, 0) / (bb.length - 1));
  // Unit std up to the bfloat16 rounding PEFT's buffers have; every value is a bfloat16.
  assert.ok(Math.abs(sd - 1) < 1e-2, `B std ${sd}`);
  const bits = new Uint32Array(bb.buffer, bb.byteOffset, bb.length);
  assert.ok(bits.every((u) => (u & 0xffff) === 0), "a base value is not a bfloat16");
  big.applied.dispose();
});

Deno.test("randlora: identity at init, r n + n lo per layer, trains with the base frozen, merges, state round trip", () => {
  assertIdentityAtInit(randlora, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  const per = (inF: number, out: number) => {
    const lo = Math.min(inF, out);
    const n = Math.ceil(lo / 5);
    return 5 * n + n * lo;
  };
  const { model, applied } = applyTiny(randlora, OPTS);
  const init = logitsOf(model, tinyBatch());
  assert.equal(
    trainableCount(applied),
    c.nLayers * (per(c.dim, kv) + per(c.hiddenDim, c.dim) + per(c.dim, c.hiddenDim)),
  );
  assertTrainsFrozenBase(model, applied);
  assertMergeEquivalent(model, applied, init);
  assertStateRoundTrip(randlora, OPTS);
  assert.deepEqual(randlora.schema.parse({}), { targets: "q+v", rank: 32, alpha: 640, projectionPrngKey: 0 });
});
