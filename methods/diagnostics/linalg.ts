/**
 * Shared numerics for the adapter diagnostics: input checking for row-major matrices, squared
 * singular values through the smaller Gram matrix, and Shannon entropy of a weight vector.
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";

/** A row-major dense matrix buffer. */
export type MatrixData = Float32Array | Float64Array;

/** Matrix shape as [rows, cols]. */
export type Shape = readonly [number, number];

/**
 * Check that `data` holds a finite row-major [rows, cols] matrix and return it as Float64.
 * Float64 because Gram products and entropies of Float32 data lose digits otherwise.
 */
export function checkMatrix(data: MatrixData, shape: Shape, name: string): Float64Array {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) {
    throw new Error(`${name} must be a Float32Array or Float64Array`);
  }
  const [rows, cols] = shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`${name} shape must be two positive integers, got [${shape.join(", ")}]`);
  }
  if (data.length !== rows * cols) {
    throw new Error(`${name} has ${data.length} elements but shape [${rows}, ${cols}] needs ${rows * cols}`);
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${name} has a non-finite value at index ${i}`);
  }
  return data instanceof Float64Array ? data : Float64Array.from(data);
}

/** Wrap a row-major Float64 buffer as an ml-matrix Matrix. */
export function toMatrix(data: Float64Array, rows: number, cols: number): Matrix {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) m.set(i, j, data[i * cols + j]);
  }
  return m;
}

/**
 * Squared singular values s_i^2 of the row-major [rows, cols] matrix A, descending, as the
 * eigenvalues of the smaller Gram matrix (A A^T if rows <= cols, else A^T A).
 * Squared values are what entropies need, and the Gram route costs min(r,c)^2 * max(r,c)
 * plus one min(r,c)-sized symmetric eigensolve. Tiny negative round-off is clamped to 0.
 */
export function squaredSingularValues(data: Float64Array, rows: number, cols: number): Float64Array {
  const k = Math.min(rows, cols);
  const g = new Float64Array(k * k);
  if (rows <= cols) {
    // G = A A^T: dot products of contiguous rows.
    for (let i = 0; i < rows; i++) {
      const oi = i * cols;
      for (let j = i; j < rows; j++) {
        const oj = j * cols;
        let s = 0;
        for (let t = 0; t < cols; t++) s += data[oi + t] * data[oj + t];
        g[i * k + j] = s;
        g[j * k + i] = s;
      }
    }
  } else {
    // G = A^T A as a sum of row outer products, so every read stays contiguous.
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let p = 0; p < cols; p++) {
        const a = data[o + p];
        if (a === 0) continue;
        const gp = p * k;
        for (let q = p; q < cols; q++) g[gp + q] += a * data[o + q];
      }
    }
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) g[q * k + p] = g[p * k + q];
  }
  if (k === 1) return Float64Array.of(g[0]);
  const gm = new Matrix(k, k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) gm.set(i, j, g[i * k + j]);
  const ev = new EigenvalueDecomposition(gm, { assumeSymmetric: true }).realEigenvalues;
  const out = Float64Array.from(ev, (v) => Math.max(0, v));
  return out.sort().reverse();
}

/**
 * Shannon entropy (natural log) of non-negative weights w after normalising them:
 * H = -sum_i p_i ln p_i with p_i = w_i / sum_j w_j, and 0 ln 0 = 0.
 * Throws when the weights sum to zero, since no distribution exists then.
 */
export function shannonEntropy(weights: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    if (!(weights[i] >= 0)) {
      throw new Error(`entropy weights must be non-negative, got ${weights[i]} at ${i}`);
    }
    total += weights[i];
  }
  if (!(total > 0)) throw new Error("entropy weights sum to zero: the matrix is zero");
  let h = 0;
  for (let i = 0; i < weights.length; i++) {
    const p = weights[i] / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}

/**
 * Numerical rank from descending values v (singular values s_i, or Gram eigenvalues s_i^2):
 * the count of v_i > max(rows, cols) * eps * v_1. For singular values this is the LAPACK/NumPy
 * default; for Gram eigenvalues the same form is right because the eigensolve carries absolute
 * error ~ eps * s_1^2, so smaller squared values are round-off, not rank.
 */
export function numericalRank(values: ArrayLike<number>, rows: number, cols: number): number {
  if (values.length === 0 || !(values[0] > 0)) return 0;
  const tol = Math.max(rows, cols) * Number.EPSILON * values[0];
  let r = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > tol) r++;
  return r;
}
