/**
 * LoftQ initialisation (Li et al. 2023, "LoftQ: LoRA-Fine-Tuning-Aware Quantization", Alg. 1):
 * choose the quantized backbone Q and the LoRA factors so that Q + B·A ≈ W, instead of QLoRA's
 * Q = q(W), B = 0 which starts fine-tuning from the full quantization error.
 *
 * With B_0 A_0 = 0, for t = 1..T:
 *   Q_t = q(W - B_{t-1} A_{t-1})
 *   U S V^T = SVD(W - Q_t);  B_t = U_r S_r^{1/2}  [out, r],  A_t = S_r^{1/2} V_r^T  [r, in]
 * and the result is (Q_T, A_T, B_T). B_t A_t is the best rank-r approximation of W - Q_t
 * (Eckart–Young), so ||W - Q_t - B_t A_t||_F <= ||W - Q_t||_F; at t = 1 this is already below
 * the QLoRA error ||W - q(W)||_F whenever the residual is nonzero.
 * @module
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import type { QuantConfig, ResolvedQuantConfig } from "./config.ts";
import { fromCodes, type QuantizedWeight } from "./quantize.ts";
import { checkWeight, dequantizeArray, type QuantCodes, quantizeCodes } from "./reference.ts";

/** LoftQ settings. */
export interface LoftQOptions {
  /** The backbone's quantization. */
  config: QuantConfig | ResolvedQuantConfig;
  /** LoRA rank r, 1 <= r <= min(out, in). */
  rank: number;
  /** Alternating steps T (default 5; the paper uses 1..5). */
  iterations?: number;
}

/** LoftQ output: Q as a packed weight plus its codes, and the LoRA factors (row-major float32). */
export interface LoftQResult {
  /** Q_T, packed. The caller owns and disposes it. */
  quantized: QuantizedWeight;
  /** Q_T's reference codes (dequantizeArray(codes) is Q_T in float32). */
  codes: QuantCodes;
  /** A_T, [rank, in]. */
  a: Float32Array;
  /** B_T, [out, rank]. */
  b: Float32Array;
  /** ||W - Q_t - B_t A_t||_F after each iteration t = 1..T. */
  errors: number[];
  /** ||W - q(W)||_F, the QLoRA initialisation's error (B = 0). */
  baselineError: number;
}

/** Run LoftQ on a row-major float32 [out, in] weight. */
export function loftqInit(weight: Float32Array, shape: [number, number], options: LoftQOptions): LoftQResult {
  checkWeight(weight, shape);
  const [rows, cols] = shape;
  const { rank } = options;
  const iterations = options.iterations ?? 5;
  if (!Number.isInteger(rank) || rank < 1 || rank > Math.min(rows, cols)) {
    throw new Error(`LoftQ rank must be an integer in [1, ${Math.min(rows, cols)}], got ${rank}`);
  }
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`LoftQ iterations must be an integer >= 1, got ${iterations}`);
  }
  let lowRank: Float32Array = new Float32Array(weight.length); // B_{t-1} A_{t-1}
  let a: Float32Array = new Float32Array(rank * cols);
  let b: Float32Array = new Float32Array(rows * rank);
  let codes: QuantCodes | null = null;
  let baselineError = NaN;
  const errors: number[] = [];
  for (let t = 0; t < iterations; t++) {
    const target = new Float32Array(weight.length);
    for (let i = 0; i < weight.length; i++) target[i] = weight[i] - lowRank[i];
    codes = quantizeCodes(target, shape, options.config);
    const q = dequantizeArray(codes);
    const residual = new Matrix(rows, cols);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) residual.set(i, j, weight[i * cols + j] - q[i * cols + j]);
    }
    if (t === 0) baselineError = residual.norm("frobenius");
    ({ a, b } = truncatedFactors(residual, rank));
    lowRank = matmul(b, a, rows, rank, cols);
    let err = 0;
    for (let i = 0; i < weight.length; i++) err += (weight[i] - q[i] - lowRank[i]) ** 2;
    errors.push(Math.sqrt(err));
  }
  return { quantized: fromCodes(codes!), codes: codes!, a, b, errors, baselineError };
}

/** Rank-r factors of M = U S V^T: B = U_r S_r^{1/2}, A = S_r^{1/2} V_r^T (split evenly, as LoftQ). */
function truncatedFactors(m: Matrix, rank: number): { a: Float32Array; b: Float32Array } {
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  const u = svd.leftSingularVectors;
  const v = svd.rightSingularVectors;
  const s = svd.diagonal; // descending (JAMA ordering)
  const a = new Float32Array(rank * m.columns);
  const b = new Float32Array(m.rows * rank);
  for (let k = 0; k < rank; k++) {
    const root = Math.sqrt(s[k]);
    for (let i = 0; i < m.rows; i++) b[i * rank + k] = u.get(i, k) * root;
    for (let j = 0; j < m.columns; j++) a[k * m.columns + j] = v.get(j, k) * root;
  }
  return { a, b };
}

/** Row-major [n, k] · [k, m] in float64 accumulation. */
function matmul(x: Float32Array, y: Float32Array, n: number, k: number, m: number): Float32Array {
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += x[i * k + p] * y[p * m + j];
      out[i * m + j] = acc;
    }
  }
  return out;
}
