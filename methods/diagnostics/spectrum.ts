/**
 * Spectral diagnostics of an adapter's weight update dW: singular values, effective and stable
 * rank, their ratios to the adapter's nominal rank, and principal angles between the top
 * singular subspaces of dW and of the frozen weight W.
 * @module
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import {
  checkMatrix,
  type MatrixData,
  numericalRank,
  shannonEntropy,
  type Shape,
  toMatrix,
} from "./linalg.ts";

/** Thin SVD of a checked row-major matrix; ml-matrix returns singular values descending. */
function svd(data: Float64Array, rows: number, cols: number, vectors: boolean): SingularValueDecomposition {
  return new SingularValueDecomposition(toMatrix(data, rows, cols), {
    autoTranspose: true,
    computeLeftSingularVectors: vectors,
    computeRightSingularVectors: vectors,
  });
}

/**
 * Singular values s_1 >= ... >= s_min(rows, cols) >= 0 of the row-major matrix dW.
 */
export function singularValues(dW: MatrixData, shape: Shape): number[] {
  const a = checkMatrix(dW, shape, "dW");
  return Array.from(svd(a, shape[0], shape[1], false).diagonal, (s) => Math.max(0, s));
}

function checkSpectrum(s: ArrayLike<number>): void {
  if (s.length === 0) throw new Error("singular values are empty");
  for (let i = 0; i < s.length; i++) {
    if (!(s[i] >= 0) || !Number.isFinite(s[i])) {
      throw new Error(`singular values must be finite and non-negative, got ${s[i]} at ${i}`);
    }
  }
}

/**
 * Effective rank (Roy & Vetterli 2007): erank = exp(H(p)), H(p) = -sum_i p_i ln p_i with
 * p_i = s_i / sum_j s_j. It lies in [1, number of nonzero s_i]; a zero matrix gets 0
 * (no direction at all), so a freshly initialised LoRA (B = 0) does not throw.
 */
export function effectiveRank(s: ArrayLike<number>): number {
  checkSpectrum(s);
  let total = 0;
  for (let i = 0; i < s.length; i++) total += s[i];
  return total > 0 ? Math.exp(shannonEntropy(s)) : 0;
}

/**
 * Stable rank: ||dW||_F^2 / ||dW||_2^2 = sum_i s_i^2 / max_i s_i^2, in [1, rank]; 0 for a zero
 * matrix. Less sensitive than erank to a tail of tiny singular values.
 */
export function stableRank(s: ArrayLike<number>): number {
  checkSpectrum(s);
  let sum2 = 0;
  let max = 0;
  for (let i = 0; i < s.length; i++) {
    sum2 += s[i] * s[i];
    max = Math.max(max, s[i]);
  }
  return max > 0 ? sum2 / (max * max) : 0;
}

/**
 * Principal angles between the column spaces of two orthonormal bases QA, QB (both [m, k]),
 * ascending in [0, pi/2]. cos(theta_i) are the singular values of QA^T QB (descending);
 * sin(theta_i) are those of QB - QA (QA^T QB) (ascending). Angles with cos^2 >= 1/2 come from
 * asin(sin), the rest from acos(cos), since acos loses half the digits near 0 (Knyazev-Argentati).
 */
export function principalAngles(qa: Matrix, qb: Matrix): number[] {
  if (qa.rows !== qb.rows || qa.columns !== qb.columns) {
    throw new Error(
      `bases must have equal shapes, got [${qa.rows}, ${qa.columns}] and [${qb.rows}, ${qb.columns}]`,
    );
  }
  const k = qa.columns;
  if (k === 0) return [];
  if (k > qa.rows) throw new Error(`a basis of ${k} vectors cannot be orthonormal in dimension ${qa.rows}`);
  const c = qa.transpose().mmul(qb);
  const cos = new SingularValueDecomposition(c, {
    autoTranspose: true,
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
  }).diagonal;
  const sinDesc = new SingularValueDecomposition(Matrix.sub(qb, qa.mmul(c)), {
    autoTranspose: true,
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
  }).diagonal;
  const angles: number[] = [];
  for (let i = 0; i < k; i++) {
    const ci = Math.min(1, Math.max(0, cos[i]));
    const si = Math.min(1, Math.max(0, sinDesc[k - 1 - i]));
    angles.push(ci * ci >= 0.5 ? Math.asin(si) : Math.acos(ci));
  }
  return angles.sort((x, y) => x - y);
}

/** Principal angles between top-k singular subspaces of two matrices of one shape. */
export interface SubspaceAngles {
  /** k actually used: the request capped by both numerical ranks (beyond them the subspace is arbitrary). */
  k: number;
  /** Angles (radians, ascending) between the top-k left singular subspaces (column spaces). */
  left: number[];
  /** Angles (radians, ascending) between the top-k right singular subspaces (row spaces). */
  right: number[];
}

function leadingColumns(m: Matrix, k: number): Matrix {
  return m.subMatrix(0, m.rows - 1, 0, k - 1);
}

function anglesFromSvds(
  a: SingularValueDecomposition,
  b: SingularValueDecomposition,
  shape: Shape,
  k: number,
): SubspaceAngles {
  const kk = Math.min(
    k,
    numericalRank(a.diagonal, shape[0], shape[1]),
    numericalRank(b.diagonal, shape[0], shape[1]),
  );
  if (kk === 0) return { k: 0, left: [], right: [] };
  return {
    k: kk,
    left: principalAngles(
      leadingColumns(a.leftSingularVectors, kk),
      leadingColumns(b.leftSingularVectors, kk),
    ),
    right: principalAngles(
      leadingColumns(a.rightSingularVectors, kk),
      leadingColumns(b.rightSingularVectors, kk),
    ),
  };
}

function checkPositiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

/**
 * Principal angles between the top-k left (and right) singular subspaces of dW and of W:
 * with U_dW, U_W the leading k left singular vectors, cos(theta_i) = sigma_i(U_dW^T U_W);
 * likewise with the right singular vectors V. theta = 0 means dW amplifies directions W
 * already uses; pi/2 means it writes into directions W does not.
 */
export function subspaceAngles(dW: MatrixData, W: MatrixData, shape: Shape, k: number): SubspaceAngles {
  checkPositiveInt(k, "k");
  const a = checkMatrix(dW, shape, "dW");
  const b = checkMatrix(W, shape, "W");
  return anglesFromSvds(svd(a, shape[0], shape[1], true), svd(b, shape[0], shape[1], true), shape, k);
}

/** All spectral diagnostics of one update, as plain JSON-able numbers. */
export interface UpdateDiagnostics {
  rows: number;
  cols: number;
  nominalRank: number;
  /** s_1 >= s_2 >= ... of dW. */
  singularValues: number[];
  /** ||dW||_F = sqrt(sum s_i^2). */
  frobeniusNorm: number;
  /** ||dW||_2 = s_1. */
  spectralNorm: number;
  /** Count of s_i > max(rows, cols) * eps * s_1. */
  numericalRank: number;
  /** exp(H(s / sum s)). */
  effectiveRank: number;
  /** ||dW||_F^2 / ||dW||_2^2. */
  stableRank: number;
  /** effectiveRank / nominalRank: well below 1 means the adapter collapsed onto fewer directions. */
  effectiveRankRatio: number;
  /** stableRank / nominalRank. */
  stableRankRatio: number;
  /** numericalRank / nominalRank. */
  numericalRankRatio: number;
  /** Angles between top-k singular subspaces of dW and W, k = min(nominalRank, both numerical ranks). */
  subspace: SubspaceAngles;
}

/**
 * Summarise an update dW (row-major, `shape` = [rows, cols]) against its frozen weight W and the
 * adapter's nominal rank r: spectrum, erank, stable rank, ratios erank/r, srank/r, rank/r, and
 * principal angles between the top-k singular subspaces of dW and W (k = `options.k` ?? r).
 * A zero dW gives zero ranks and no angles.
 */
export function updateDiagnostics(
  dW: MatrixData,
  W: MatrixData,
  shape: Shape,
  nominalRank: number,
  options: { k?: number } = {},
): UpdateDiagnostics {
  checkPositiveInt(nominalRank, "nominalRank");
  const k = options.k ?? nominalRank;
  checkPositiveInt(k, "k");
  const [rows, cols] = shape;
  const a = checkMatrix(dW, shape, "dW");
  const b = checkMatrix(W, shape, "W");
  const sa = svd(a, rows, cols, true);
  const s = Array.from(sa.diagonal, (v) => Math.max(0, v));
  const erank = effectiveRank(s);
  const srank = stableRank(s);
  const nrank = numericalRank(s, rows, cols);
  return {
    rows,
    cols,
    nominalRank,
    singularValues: s,
    frobeniusNorm: Math.hypot(...s),
    spectralNorm: s[0],
    numericalRank: nrank,
    effectiveRank: erank,
    stableRank: srank,
    effectiveRankRatio: erank / nominalRank,
    stableRankRatio: srank / nominalRank,
    numericalRankRatio: nrank / nominalRank,
    subspace: anglesFromSvds(sa, svd(b, rows, cols, true), shape, k),
  };
}
