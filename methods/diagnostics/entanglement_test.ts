import assert from "node:assert/strict";
import { Rng } from "../../models/util/rng.ts";
import { entanglementProfile, pageEntropy, primeSites } from "./entanglement.ts";

function close(actual: number, expected: number, tol: number, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);
}

function eye(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

Deno.test("primeSites factors dimensions into ascending prime sites", () => {
  assert.deepEqual(primeSites(64), [2, 2, 2, 2, 2, 2]);
  assert.deepEqual(primeSites(96), [2, 2, 2, 2, 2, 3]);
  assert.deepEqual(primeSites(1), []);
  assert.deepEqual(primeSites(97), [97]);
  assert.deepEqual(primeSites(2 * 101), [2, 101]);
  assert.deepEqual(primeSites(2 * 11 * 13, 7), [2, 143], "primes above the bound stay one site");
  assert.throws(() => primeSites(0), /dimension must be a positive integer, got 0/);
});

Deno.test("pageEntropy matches Page's formula at small sizes", () => {
  close(pageEntropy(1, 5), 0, 0);
  close(pageEntropy(2, 2), 1 / 3 + 1 / 4 - 1 / 4, 1e-15);
  close(pageEntropy(3, 2), pageEntropy(2, 3), 0, "symmetric");
  close(pageEntropy(2, 3), 1 / 4 + 1 / 5 + 1 / 6 - 1 / 6, 1e-15);
});

Deno.test("rank-1 update: middle-cut entropy 0, rank 1", () => {
  const rng = new Rng(5);
  const u = rng.normalArray(16);
  const v = rng.normalArray(24);
  const dW = new Float64Array(16 * 24);
  for (let i = 0; i < 16; i++) for (let j = 0; j < 24; j++) dW[i * 24 + j] = u[i] * v[j];
  const p = entanglementProfile(dW, [16, 24]);
  assert.deepEqual(p.sites, [2, 2, 2, 2, 2, 2, 2, 3]);
  assert.equal(p.middleCut, 4);
  assert.equal(p.rank, 1);
  close(p.middleEntropy, 0, 1e-12, "middle");
  close(p.entropy[p.middleCut - 1], 0, 1e-12);
  assert.equal(p.middleBound, 0);
});

Deno.test("product state over every site has zero entropy at every cut", () => {
  // dW[i, j] = prod_k f_k(bit_k) over the 8 binary digits of (i, j): a product state.
  const rng = new Rng(9);
  const f = Array.from({ length: 8 }, () => [rng.normal(), rng.normal()]);
  const dW = new Float64Array(256);
  for (let idx = 0; idx < 256; idx++) {
    let a = 1;
    for (let k = 0; k < 8; k++) a *= f[k][(idx >> (7 - k)) & 1];
    dW[idx] = a;
  }
  const p = entanglementProfile(dW, [16, 16]);
  assert.equal(p.entropy.length, 7);
  for (const s of p.entropy) close(s, 0, 1e-12);
});

Deno.test("identity: middle cut ln n, and the Bell-pair profile l ln 2", () => {
  // vec(I_16) = prod_k sum_b |b>_k |b>_{k+4}: Bell pairs link site k to site k+4, so the cut
  // after site l severs min(l, 8 - l) pairs.
  const p = entanglementProfile(eye(16), [16, 16]);
  assert.equal(p.middleCut, 4);
  [1, 2, 3, 4, 3, 2, 1].forEach((c, i) => close(p.entropy[i], c * Math.LN2, 1e-12, `cut ${i + 1}`));
  close(p.middleEntropy, Math.log(16), 1e-12);
  close(p.middleBound, Math.log(16), 1e-15);
  const q = entanglementProfile(Float32Array.from(eye(96)), [96, 96]);
  assert.equal(q.rank, 96);
  close(q.middleEntropy, Math.log(96), 1e-12, "ln 96");
  q.entropy.forEach((s, i) => assert.ok(s <= q.bound[i] + 1e-12, `cut ${i + 1} above its bound`));
});

Deno.test("diagonal rectangular update: middle cut is the entropy of normalised s^2", () => {
  const dW = new Float64Array(4 * 6);
  [3, -2, 1].forEach((v, i) => (dW[i * 6 + i] = v));
  const p = entanglementProfile(dW, [4, 6]);
  assert.deepEqual(p.sites, [2, 2, 2, 3]);
  assert.equal(p.rank, 3);
  const q = [9 / 14, 4 / 14, 1 / 14];
  close(p.middleEntropy, -q.reduce((s, x) => s + x * Math.log(x), 0), 1e-12);
  close(p.middleBound, Math.log(3), 1e-15);
  assert.ok(p.middleEntropy <= p.middleBound);
});

// A single draw fluctuates about the mean; over seeds 0..49 the worst cut deviates 2.3%.
Deno.test("random Gaussian 32 x 32 with binary sites follows Page's curve at every cut", () => {
  const rng = new Rng(2024);
  const p = entanglementProfile(rng.normalArray(32 * 32), [32, 32]);
  assert.equal(p.entropy.length, 9);
  for (let l = 1; l <= 9; l++) {
    const m = 2 ** Math.min(l, 10 - l);
    const n = 2 ** Math.max(l, 10 - l);
    const s = p.entropy[l - 1];
    const approx = Math.log(m) - m / (2 * n);
    assert.ok(
      Math.abs(s - pageEntropy(m, n)) <= 0.03 * pageEntropy(m, n),
      `cut ${l}: ${s} vs Page ${pageEntropy(m, n)}`,
    );
    assert.ok(Math.abs(s - approx) <= 0.03 * approx, `cut ${l}: ${s} vs ln m - m/2n = ${approx}`);
  }
});

Deno.test("zero update and bad shapes throw", () => {
  assert.throws(() => entanglementProfile(new Float32Array(16), [4, 4]), /dW is zero/);
  assert.throws(() => entanglementProfile(new Float32Array(15), [4, 4]), /has 15 elements/);
});
