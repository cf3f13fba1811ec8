import assert from "node:assert/strict";
import {
  attentionEntropyCurve,
  type AttentionSample,
  attentionSpectralEntropy,
  compareAttentionEntropy,
  fitLogLaw,
} from "./attention_entropy.ts";

function close(actual: number, expected: number, tol: number, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);
}

/** T x T attention where each token attends uniformly within its block of size c (c | T). */
function blockUniform(t: number, c: number): Float32Array {
  const a = new Float32Array(t * t);
  for (let i = 0; i < t; i++) {
    const start = Math.floor(i / c) * c;
    for (let j = start; j < start + c; j++) a[i * t + j] = 1 / c;
  }
  return a;
}

Deno.test("attention entropy: identity ln T, uniform 0, block-uniform ln(T / c)", () => {
  // Block-uniform with blocks of c is rank T / c with equal singular values.
  close(attentionSpectralEntropy(blockUniform(12, 1), 12), Math.log(12), 1e-9, "identity");
  close(attentionSpectralEntropy(blockUniform(12, 12), 12), 0, 1e-9, "uniform");
  close(attentionSpectralEntropy(blockUniform(12, 3), 12), Math.log(4), 1e-9, "blocks of 3");
});

Deno.test("fitLogLaw recovers a and b exactly and R^2 by hand", () => {
  const lengths = [3, 10, 50, 200, 1000];
  const fit = fitLogLaw(lengths, lengths.map((l) => 0.7 - 0.3 * Math.log(l)));
  close(fit.a, 0.7, 1e-12, "a");
  close(fit.b, -0.3, 1e-12, "b");
  close(fit.r2, 1, 1e-12, "r2");
  // x = ln l = 0, 1, 2 and S = 0, 2, 1: b = 1/2, a = 1/2, SS_res = 3/2, SS_tot = 2.
  const h = fitLogLaw([1, Math.E, Math.E ** 2], [0, 2, 1]);
  close(h.a, 0.5, 1e-12);
  close(h.b, 0.5, 1e-12);
  close(h.r2, 0.25, 1e-12);
});

Deno.test("entropy curve of block attention fits S = -ln c + ln l", () => {
  const c = 4;
  const samples: AttentionSample[] = [64, 8, 32, 16].map((l) => ({
    length: l,
    heads: [blockUniform(l, c), blockUniform(l, c)],
  }));
  const curve = attentionEntropyCurve(samples);
  assert.deepEqual(curve.lengths, [8, 16, 32, 64]);
  curve.mean.forEach((s, i) => close(s, Math.log(curve.lengths[i] / c), 1e-9));
  const fit = fitLogLaw(curve.lengths, curve.mean);
  close(fit.a, -Math.log(c), 1e-9, "a");
  close(fit.b, 1, 1e-9, "b");
});

Deno.test("compare: identity attention (b = 1) vs uniform attention (b = 0)", () => {
  const lengths = [4, 8, 16];
  const frozen = lengths.map((l) => ({ length: l, heads: [blockUniform(l, 1)] }));
  // Two heads, one uniform (S = 0) and one identity (S = ln l): the mean is ln(l) / 2.
  const adapted = lengths.map((l) => ({ length: l, heads: [blockUniform(l, l), blockUniform(l, 1)] }));
  const r = compareAttentionEntropy(frozen, adapted);
  close(r.frozen.fit.a, 0, 1e-9);
  close(r.frozen.fit.b, 1, 1e-9);
  close(r.adapted.fit.b, 0.5, 1e-9);
  close(r.deltaB, -0.5, 1e-9);
  assert.deepEqual(r.adapted.curve.perHead.map((h) => h.length), [2, 2, 2]);
});

Deno.test("bad attention input throws one clear line", () => {
  const bad = blockUniform(4, 2);
  bad[0] = 0.9;
  assert.throws(() => attentionSpectralEntropy(bad, 4), /attention row 0 sums to/);
  const neg = Float64Array.of(1.5, -0.5, 0, 1);
  assert.throws(() => attentionSpectralEntropy(neg, 2), /negative weight -0.5 at \(0, 1\)/);
  assert.throws(() => fitLogLaw([8, 8], [1, 2]), /at least two distinct lengths/);
  assert.throws(() => fitLogLaw([8], [1, 2]), /as many values as lengths/);
  assert.throws(() => attentionEntropyCurve([]), /no attention samples/);
  assert.throws(() => attentionEntropyCurve([{ length: 2, heads: [] }]), /no heads/);
});
