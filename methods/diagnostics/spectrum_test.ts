import assert from "node:assert/strict";
import { Matrix } from "ml-matrix";
import { Rng } from "../../models/util/rng.ts";
import {
  effectiveRank,
  principalAngles,
  singularValues,
  stableRank,
  subspaceAngles,
  updateDiagnostics,
} from "./spectrum.ts";

function close(actual: number, expected: number, tol = 1e-9, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);
}

/** Row-major rows x cols matrix with `diag` on its main diagonal. */
function diagonal(rows: number, cols: number, diag: number[]): Float64Array {
  const m = new Float64Array(rows * cols);
  diag.forEach((v, i) => (m[i * cols + i] = v));
  return m;
}

function outer(u: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  const m = new Float64Array(u.length * v.length);
  for (let i = 0; i < u.length; i++) for (let j = 0; j < v.length; j++) m[i * v.length + j] = u[i] * v[j];
  return m;
}

Deno.test("diagonal matrix: singular values, effective and stable rank by hand", () => {
  // 4 x 6 with diagonal (4, -3, 2, 1): s = (4, 3, 2, 1), p = s / 10.
  const dW = diagonal(4, 6, [4, -3, 2, 1]);
  const s = singularValues(dW, [4, 6]);
  [4, 3, 2, 1].forEach((v, i) => close(s[i], v, 1e-12, `s_${i}`));
  const h = -(0.4 * Math.log(0.4) + 0.3 * Math.log(0.3) + 0.2 * Math.log(0.2) + 0.1 * Math.log(0.1));
  close(effectiveRank(s), Math.exp(h), 1e-12, "erank");
  close(stableRank(s), (16 + 9 + 4 + 1) / 16, 1e-12, "srank");
  // Equal singular values: erank = srank = their count.
  close(effectiveRank([2, 2, 2, 0]), 3, 1e-12);
  close(stableRank([2, 2, 2, 0]), 3, 1e-12);
});

Deno.test("rank-1 update has effective and stable rank 1; identity has n", () => {
  const rng = new Rng(7);
  const u = rng.normalArray(12);
  const v = rng.normalArray(9);
  const dW = outer(u, v);
  const d = updateDiagnostics(dW, rng.normalArray(12 * 9), [12, 9], 4);
  close(d.effectiveRank, 1, 1e-9, "erank");
  close(d.stableRank, 1, 1e-9, "srank");
  assert.equal(d.numericalRank, 1);
  close(d.effectiveRankRatio, 0.25, 1e-9);
  close(d.stableRankRatio, 0.25, 1e-9);
  assert.equal(d.subspace.k, 1, "k capped by rank(dW)");
  // Rounding u v^T to float32 makes it full rank with s_i ~ 1e-7 s_1, which erank sees (it
  // is the true spectrum of the stored matrix), so float32 input is only rank 1 to ~1e-5.
  const d32 = updateDiagnostics(Float32Array.from(dW), rng.normalArray(12 * 9), [12, 9], 4);
  close(d32.effectiveRank, 1, 1e-5, "erank f32");
  close(d32.stableRank, 1, 1e-9, "srank f32");

  const n = 10;
  const eye = diagonal(n, n, new Array(n).fill(1));
  const s = singularValues(eye, [n, n]);
  close(effectiveRank(s), n, 1e-9);
  close(stableRank(s), n, 1e-9);
});

Deno.test("principal angles of a subspace with itself are 0", () => {
  const rng = new Rng(11);
  const W = rng.normalArray(20 * 15);
  const a = subspaceAngles(W, W, [20, 15], 5);
  assert.equal(a.k, 5);
  for (const t of [...a.left, ...a.right]) close(t, 0, 1e-7, "angle");
  // dW with the same singular vectors as W but a different spectrum: still angle 0.
  const dW = diagonal(6, 6, [1, 5, 3, 0, 0, 0]);
  const Wd = diagonal(6, 6, [9, 0.5, 7, 0, 0, 0]);
  const b = subspaceAngles(dW, Wd, [6, 6], 3);
  for (const t of [...b.left, ...b.right]) close(t, 0, 1e-12, "angle");
});

Deno.test("principal angles between orthogonal coordinate subspaces are pi/2", () => {
  const dW = diagonal(5, 4, [3, 2, 0, 0]);
  const W = new Float64Array(20);
  W[2 * 4 + 2] = 5; // e3 e3^T * 5
  W[3 * 4 + 3] = 4; // e4 e4^T * 4
  const a = subspaceAngles(dW, W, [5, 4], 2);
  assert.equal(a.k, 2);
  for (const t of [...a.left, ...a.right]) close(t, Math.PI / 2, 1e-12, "angle");
});

Deno.test("principal angles recover a known rotation, small angles to full precision", () => {
  for (const t of [0.3, 1.2, 1e-9]) {
    // span{e1, e2} vs span{e1, cos t e2 + sin t e3}: angles (0, t).
    const qa = new Matrix([[1, 0], [0, 1], [0, 0], [0, 0]]);
    const qb = new Matrix([[1, 0], [0, Math.cos(t)], [0, Math.sin(t)], [0, 0]]);
    const ang = principalAngles(qa, qb);
    close(ang[0], 0, 1e-15);
    close(ang[1], t, 1e-15 + 1e-12 * t, `t=${t}`);
    // Left subspaces e1 vs (cos t, sin t, 0): angle t; right subspaces both e1: angle 0.
    const dW = outer([1, 0, 0], [1, 0]);
    const W = outer([Math.cos(t), Math.sin(t), 0], [2, 0]);
    const s = subspaceAngles(dW, W, [3, 2], 1);
    close(s.left[0], t, 1e-15 + 1e-9 * t, `left t=${t}`);
    close(s.right[0], 0, 1e-15);
  }
});

Deno.test("updateDiagnostics is plain JSON and handles a zero update", () => {
  const rng = new Rng(3);
  const d = updateDiagnostics(rng.normalArray(8 * 6), rng.normalArray(8 * 6), [8, 6], 2);
  assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
  assert.equal(d.singularValues.length, 6);
  close(d.spectralNorm, d.singularValues[0], 0);
  close(d.frobeniusNorm ** 2, d.singularValues.reduce((s, v) => s + v * v, 0), 1e-9);
  assert.equal(d.subspace.left.length, 2);
  const z = updateDiagnostics(new Float32Array(48), rng.normalArray(48), [8, 6], 2);
  assert.equal(z.effectiveRank, 0);
  assert.equal(z.stableRank, 0);
  assert.equal(z.numericalRank, 0);
  assert.deepEqual(z.subspace, { k: 0, left: [], right: [] });
});

Deno.test("bad input throws one clear line", () => {
  const m = new Float32Array(6);
  assert.throws(() => singularValues(m, [2, 4]), /has 6 elements but shape \[2, 4\] needs 8/);
  assert.throws(() => singularValues(Float32Array.of(1, NaN), [1, 2]), /non-finite value at index 1/);
  assert.throws(() => updateDiagnostics(m, m, [2, 3], 0), /nominalRank must be a positive integer/);
  assert.throws(() => effectiveRank([1, -1]), /non-negative/);
  assert.throws(() => principalAngles(new Matrix(3, 2), new Matrix(3, 1)), /equal shapes/);
});
