/**
 * Weight-derived starts of the LoRA family, as Hugging Face PEFT's `init_lora_weights` values
 * (`LoraLayer.olora_init`, `pissa_init`; PEFT 0.20): the run's `--opt init=...` of `lora` and
 * `rslora`. Each returns the starting factors A0 [r, in], B0 [out, r] and the residual base
 * W_res = W - s B0 A0 that replaces the frozen weight, so the adapted function W_res + s B A
 * equals the original at init (up to float32 rounding of the residual).
 *
 * - `olora` (Büyükakyüz 2024, OLoRA): reduced QR of W [out, in] = Q R; B0 = Q[:, :r] (orthonormal
 *   columns), A0 = R[:r, :] (upper triangular), no division by s (as PEFT: s B0 A0 is subtracted).
 *   The paper speaks of orthonormal factors; in PEFT (and here) the orthonormal one is B0 = Q_r.
 * - `pissa` (Meng et al. 2024): top-r SVD triplets, B0 = U_r sqrt(S_r / s), A0 = sqrt(S_r / s) V_r^T.
 * - `pissa_niter_K`: the same from PEFT's fast SVD, `torch.svd_lowrank(W, q=r, niter=K)`: a
 *   randomized range finder (Halko et al. 2011, Algorithm 4.4) with K subspace iterations on a
 *   seeded Gaussian sketch, then an exact SVD of the small projected matrix. The sketch is seeded
 *   from the layer's name ({@link sketchRng}), not the run seed (PEFT draws it from torch's global
 *   generator): the residual base then depends on W alone, as with the exact SVD, so a saved
 *   adapter (A, B) reloads onto the same base under any seed.
 * - `milora` (Wang et al. 2024, MiLoRA): the r minor (smallest) singular triplets, with PiSSA's
 *   formulas (its reference code divides S by s the same way). PEFT has no `milora` value (its
 *   `mica` init freezes B instead), so this follows the paper and its code.
 *
 * Linear algebra runs in float64: Householder QR with LAPACK's sign convention (as torch.linalg.qr),
 * exact SVD from ml-matrix (as pissa.ts).
 * @module
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { hashString, Rng } from "../models/util/rng.ts";

/** A dense float64 matrix, row-major. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** The LoRA inits taking their start from the frozen weight. */
export type LoraWeightInit = "olora" | "pissa" | "milora" | `pissa_niter_${number}`;

/** Accepted spellings of {@link LoraWeightInit} (PEFT's `init_lora_weights` strings). */
export const LORA_INIT_PATTERN = /^(olora|pissa|milora|pissa_niter_\d+)$/;

/** The generator of a layer's fast-SVD sketch: fixed by the layer name (see the module doc). */
export function sketchRng(layer: string): Rng {
  return new Rng(hashString(`${layer}.lora_init`));
}

/** Starting factors A0 [r, in], B0 [out, r] and the residual base weight [out, in], row-major. */
export interface LoraStart {
  a: Float32Array;
  b: Float32Array;
  residual: Float32Array;
}

function mat(rows: number, cols: number): Mat {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** a^T b. */
function matMulTA(a: Mat, b: Mat): Mat {
  const out = mat(a.cols, b.cols);
  for (let k = 0; k < a.rows; k++) {
    for (let i = 0; i < a.cols; i++) {
      const x = a.data[k * a.cols + i];
      if (x === 0) continue;
      for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j] += x * b.data[k * b.cols + j];
    }
  }
  return out;
}

/** a b. */
function matMul(a: Mat, b: Mat): Mat {
  const out = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const x = a.data[i * a.cols + k];
      if (x === 0) continue;
      for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j] += x * b.data[k * b.cols + j];
    }
  }
  return out;
}

/**
 * Reduced QR of a [m, n] by Householder reflections with LAPACK's convention (dgeqrf/dlarfg: the
 * reflector maps the column to beta e1 with beta = -sign(alpha) ||x||, no reflection when the part
 * below the diagonal is zero), so signs agree with torch.linalg.qr: Q [m, k], R [k, n], k = min(m, n).
 */
export function householderQr(a: Mat): { q: Mat; r: Mat } {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const w = Float64Array.from(a.data);
  const taus = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const alpha = w[j * n + j];
    let xnorm2 = 0;
    for (let i = j + 1; i < m; i++) xnorm2 += w[i * n + j] ** 2;
    if (xnorm2 === 0) continue; // H = I (tau 0)
    const beta = -(alpha >= 0 ? 1 : -1) * Math.hypot(alpha, Math.sqrt(xnorm2));
    const tau = (beta - alpha) / beta;
    const scale = 1 / (alpha - beta);
    for (let i = j + 1; i < m; i++) w[i * n + j] *= scale; // v below the unit diagonal
    w[j * n + j] = beta;
    taus[j] = tau;
    // Apply H = I - tau v v^T to the remaining columns.
    for (let c = j + 1; c < n; c++) {
      let dot = w[j * n + c];
      for (let i = j + 1; i < m; i++) dot += w[i * n + j] * w[i * n + c];
      dot *= tau;
      w[j * n + c] -= dot;
      for (let i = j + 1; i < m; i++) w[i * n + c] -= dot * w[i * n + j];
    }
  }
  const r = mat(k, n);
  for (let i = 0; i < k; i++) for (let c = i; c < n; c++) r.data[i * n + c] = w[i * n + c];
  // Q = H_0 ... H_{k-1} [I_k; 0], accumulated from the last reflector.
  const q = mat(m, k);
  for (let i = 0; i < k; i++) q.data[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const tau = taus[j];
    if (tau === 0) continue;
    for (let c = 0; c < k; c++) {
      let dot = q.data[j * k + c];
      for (let i = j + 1; i < m; i++) dot += w[i * n + j] * q.data[i * k + c];
      dot *= tau;
      q.data[j * k + c] -= dot;
      for (let i = j + 1; i < m; i++) q.data[i * k + c] -= dot * w[i * n + j];
    }
  }
  return { q, r };
}

/** Singular triplets: U [m, k], S descending [k], V [n, k]. */
export interface Svd {
  u: Mat;
  s: Float64Array;
  v: Mat;
}

function toMl(a: Mat): Matrix {
  const m = new Matrix(a.rows, a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) m.set(i, j, a.data[i * a.cols + j]);
  return m;
}

function fromMl(m: Matrix, cols: number): Mat {
  const out = mat(m.rows, cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < cols; j++) out.data[i * cols + j] = m.get(i, j);
  return out;
}

/** Thin SVD of a [m, n] (ml-matrix, float64): k = min(m, n) triplets, singular values descending. */
export function exactSvd(a: Mat): Svd {
  const k = Math.min(a.rows, a.cols);
  const svd = new SingularValueDecomposition(toMl(a), { autoTranspose: true });
  return {
    u: fromMl(svd.leftSingularVectors, k),
    s: Float64Array.from(svd.diagonal.slice(0, k)),
    v: fromMl(svd.rightSingularVectors, k),
  };
}

function transpose(a: Mat): Mat {
  const out = mat(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j];
  }
  return out;
}

/**
 * torch `get_approximate_basis(A, q, niter)`: Q [m, q] with orthonormal columns spanning A R for a
 * Gaussian R [n, q], refined by `niter` subspace iterations Q <- qr(A qr(A^T Q).Q).Q.
 */
function approximateBasis(a: Mat, q: number, niter: number, rng: Rng): Mat {
  const r: Mat = { rows: a.cols, cols: q, data: Float64Array.from(rng.normalArray(a.cols * q)) };
  let basis = householderQr(matMul(a, r)).q;
  for (let i = 0; i < niter; i++) {
    basis = householderQr(matMulTA(a, basis)).q;
    basis = householderQr(matMul(a, basis)).q;
  }
  return basis;
}

/**
 * torch `svd_lowrank(A, q, niter)` (no centering), as PEFT's `pissa_niter_K` calls it: the
 * rank-q approximate SVD U [m, q], S [q], V [n, q]. Like torch, the range finder runs on A^T when
 * m < n or n > q (keeping the projected matrix small), else on A.
 */
export function randomizedSvd(a: Mat, q: number, niter: number, rng: Rng): Svd {
  if (q > Math.min(a.rows, a.cols)) throw new Error(`svd_lowrank: q ${q} > min(${a.rows}, ${a.cols})`);
  if (a.rows < a.cols || a.cols > q) {
    const basis = approximateBasis(transpose(a), q, niter, rng); // [n, q]
    const small = exactSvd(matMul(a, basis)); // A Q [m, q] = U S Vh
    return { u: small.u, s: small.s, v: matMul(basis, small.v) };
  }
  const basis = approximateBasis(a, q, niter, rng); // [m, q]
  const small = exactSvd(matMulTA(basis, a)); // Q^T A [q, n]
  return { u: matMul(basis, small.u), s: small.s, v: small.v };
}

/**
 * PiSSA's factors from chosen singular triplets (indices into `svd`): B0 = U_I sqrt(S_I / s),
 * A0 = sqrt(S_I / s) V_I^T, and W_res = W - s B0 A0 computed in float64 from the float32 factors'
 * exact values (so W_res + s B0 A0 = W up to the residual's float32 rounding).
 */
function svdStart(w: Mat, svd: Svd, indices: number[], scale: number): LoraStart {
  const r = indices.length;
  const a = new Float32Array(r * w.cols);
  const b = new Float32Array(w.rows * r);
  indices.forEach((idx, k) => {
    const root = Math.sqrt(Math.max(0, svd.s[idx]) / scale);
    for (let i = 0; i < w.rows; i++) b[i * r + k] = svd.u.data[i * svd.u.cols + idx] * root;
    for (let j = 0; j < w.cols; j++) a[k * w.cols + j] = svd.v.data[j * svd.v.cols + idx] * root;
  });
  return { a, b, residual: residualOf(w, a, b, r, scale) };
}

/** W - s B A in float64, rounded once to float32. */
export function residualOf(w: Mat, a: Float32Array, b: Float32Array, r: number, scale: number): Float32Array {
  const out = new Float32Array(w.rows * w.cols);
  for (let i = 0; i < w.rows; i++) {
    for (let j = 0; j < w.cols; j++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += b[i * r + k] * a[k * w.cols + j];
      out[i * w.cols + j] = w.data[i * w.cols + j] - scale * ba;
    }
  }
  return out;
}

/**
 * The start of `init` for a weight [out, in] (row-major float32), rank r and LoRA scale s; `rng`
 * draws the sketch of `pissa_niter_K` (callers pass {@link sketchRng}; the other inits are
 * deterministic).
 */
export function loraInitStart(
  init: LoraWeightInit,
  weight: Float32Array,
  out: number,
  inF: number,
  rank: number,
  scale: number,
  rng: Rng,
): LoraStart {
  if (!LORA_INIT_PATTERN.test(init)) {
    throw new Error(`unknown LoRA init '${init}': use --opt init=olora|pissa|pissa_niter_K|milora`);
  }
  const k = Math.min(out, inF);
  if (rank > k) throw new Error(`--opt init=${init}: --rank ${rank} exceeds min(out, in) = ${k}`);
  const w: Mat = { rows: out, cols: inF, data: Float64Array.from(weight) };
  if (init === "olora") {
    const { q, r } = householderQr(w);
    const b = new Float32Array(out * rank);
    const a = new Float32Array(rank * inF);
    for (let i = 0; i < out; i++) for (let c = 0; c < rank; c++) b[i * rank + c] = q.data[i * k + c];
    for (let c = 0; c < rank; c++) for (let j = 0; j < inF; j++) a[c * inF + j] = r.data[c * inF + j];
    return { a, b, residual: residualOf(w, a, b, rank, scale) };
  }
  const range = (from: number) => Array.from({ length: rank }, (_, i) => from + i);
  if (init === "pissa") return svdStart(w, exactSvd(w), range(0), scale);
  if (init === "milora") return svdStart(w, exactSvd(w), range(k - rank), scale);
  const niter = Number(init.slice("pissa_niter_".length));
  return svdStart(w, randomizedSvd(w, rank, niter, rng), range(0), scale);
}
