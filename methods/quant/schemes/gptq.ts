/**
 * `gptq4`, `gptq3`: GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers", Algorithm 1; IST-DASLab/gptq `GPTQ.fasterquant`).
 *
 * Needs calibration: the layer's input rows X [N, in]. With H = (2/N) X^T X:
 *
 * 1. Dead inputs (H_jj = 0) get H_jj = 1 and W[:, j] = 0.
 * 2. act-order (option `actOrder`; the act-order flag of the GPTQ repository): columns are processed in order of
 *    decreasing H_jj (W and H permuted alike).
 * 3. Damping: H += lambda I with lambda = damping · mean(diag H) (`percdamp`, default 0.01).
 * 4. U = the upper Cholesky factor of H^-1 (H^-1 = U^T U; gptq's cholesky -> cholesky_inverse ->
 *    cholesky(upper=True)).
 * 5. Columns i = 0..in-1 in that order: at the start of each group of `blockSize` columns (default
 *    128, the usual GPTQ group size) the group's quantizer is fitted on the current, already updated
 *    W[:, i:i+blockSize] per row, gptq's asymmetric min-max `Quantizer.find_params`: xmin =
 *    min(min w, 0), xmax = max(max w, 0) (both -1, 1 when zero), s = (xmax - xmin) / (2^b - 1),
 *    z = round(-xmin / s); then q = s · (clamp(round(w / s) + z, 0, 2^b - 1) - z),
 *    err = (w - q) / U_ii and W[:, i+1:] -= err · U[i, i+1:] (the optimal-brain-surgeon update of
 *    the remaining columns). gptq applies the same updates in lazy batches of 128 columns; the
 *    arithmetic is the same sum in another order.
 *
 * Stored: b-bit codes (3-bit 10 per int32, 4-bit 8 per int32), an fp32 scale and an fp32 zero per
 * (row, group), and with act-order the group of each input column (`g_idx`, one int32 per column,
 * since groups follow the permuted order): about b + 64 / blockSize (+ 32 / out) bits per parameter.
 * @module
 */
import type { FieldBits } from "../pack.ts";
import {
  affineLayout,
  affineRows,
  checkCalibration,
  emptyCodes,
  groupsPerRow,
  packAffine,
  roundEven,
} from "./common.ts";
import type { Calibration, QuantCodes, QuantSchemeModule, ResolvedQuantConfig } from "./types.ts";

/** GPTQ's settings. */
export interface GptqOptions {
  /** Bits per code. */
  bits: 3 | 4;
  /** Columns per group. */
  groupSize: number;
  /** Process columns by decreasing Hessian diagonal. */
  actOrder: boolean;
  /** Damping as a fraction of the mean Hessian diagonal. */
  damping: number;
}

/** H = (2/N) X^T X for X [N, in] row-major, in float64. */
export function hessian(inputs: Float32Array, n: number, cols: number): Float64Array {
  const h = new Float64Array(cols * cols);
  for (let r = 0; r < n; r++) {
    const off = r * cols;
    for (let a = 0; a < cols; a++) {
      const xa = inputs[off + a];
      if (xa === 0) continue;
      const row = a * cols;
      for (let b = a; b < cols; b++) h[row + b] += xa * inputs[off + b];
    }
  }
  const f = 2 / n;
  for (let a = 0; a < cols; a++) {
    for (let b = a; b < cols; b++) {
      h[a * cols + b] *= f;
      h[b * cols + a] = h[a * cols + b];
    }
  }
  return h;
}

/** Lower Cholesky factor L of a symmetric positive definite n x n matrix (A = L L^T), in place copy. */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) throw new Error("gptq: the damped Hessian is not positive definite; raise damping");
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Inverse of an SPD matrix from its lower Cholesky factor: A^-1 = L^-T L^-1. */
function inverseFromCholesky(l: Float64Array, n: number): Float64Array {
  const li = new Float64Array(n * n); // L^-1, lower triangular
  for (let j = 0; j < n; j++) {
    li[j * n + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k] * li[k * n + j];
      li[i * n + j] = s / l[i * n + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/** gptq's asymmetric min-max quantizer fitted on one row's group values. */
function fitGroup(values: ArrayLike<number>, maxq: number): { scale: number; zero: number } {
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < values.length; k++) {
    lo = Math.min(lo, values[k]);
    hi = Math.max(hi, values[k]);
  }
  if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  const scale = Math.fround((hi - lo) / maxq);
  return { scale, zero: roundEven(-lo / scale) };
}

/**
 * GPTQ on a row-major [out, in] weight with calibration inputs X [n, in]: codes in the original
 * column order, scales and zeros per (row, group), g_idx under act-order (else empty).
 */
export function gptqQuantize(
  weight: Float32Array,
  shape: [number, number],
  inputs: Float32Array,
  n: number,
  options: GptqOptions,
): { codes: Uint8Array; scales: Float32Array; zeros: Float32Array; groupIndex: Int32Array } {
  const [rows, cols] = shape;
  const { bits, groupSize, actOrder, damping } = options;
  const maxq = 2 ** bits - 1;
  const h = hessian(inputs, n, cols);
  // Column order: identity, or by decreasing diag(H) (ties by index, so the order is deterministic).
  const perm = Int32Array.from({ length: cols }, (_, j) => j);
  if (actOrder) perm.sort((a, b) => h[b * cols + b] - h[a * cols + a] || a - b);
  // W permuted, [rows, cols] float64 working copy; dead columns zeroed.
  const w = new Float64Array(rows * cols);
  const hp = new Float64Array(cols * cols);
  for (let a = 0; a < cols; a++) {
    const pa = perm[a];
    const dead = h[pa * cols + pa] === 0;
    for (let i = 0; i < rows; i++) w[i * cols + a] = dead ? 0 : weight[i * cols + pa];
    for (let b = 0; b < cols; b++) hp[a * cols + b] = h[pa * cols + perm[b]];
    if (dead) hp[a * cols + a] = 1;
  }
  let mean = 0;
  for (let a = 0; a < cols; a++) mean += hp[a * cols + a];
  const lambda = (damping * mean) / cols;
  for (let a = 0; a < cols; a++) hp[a * cols + a] += lambda;
  // U upper with H^-1 = U^T U: U = L'^T where L' is the lower Cholesky factor of H^-1.
  const lInv = cholesky(inverseFromCholesky(cholesky(hp, cols), cols), cols);
  const u = (i: number, j: number) => lInv[j * cols + i];

  const G = groupsPerRow(cols, groupSize);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * G);
  const zeros = new Float32Array(rows * G);
  const groupIndex = actOrder ? new Int32Array(cols) : new Int32Array(0);
  const scaleNow = new Float64Array(rows);
  const zeroNow = new Float64Array(rows);
  const err = new Float64Array(rows);
  for (let i = 0; i < cols; i++) {
    const g = Math.floor(i / groupSize);
    if (i % groupSize === 0) {
      const end = Math.min(cols, i + groupSize);
      for (let r = 0; r < rows; r++) {
        const { scale, zero } = fitGroup(w.subarray(r * cols + i, r * cols + end), maxq);
        scaleNow[r] = scale;
        zeroNow[r] = zero;
        scales[r * G + g] = scale;
        zeros[r * G + g] = zero;
      }
    }
    const col = perm[i];
    if (actOrder) groupIndex[col] = g;
    const d = u(i, i);
    for (let r = 0; r < rows; r++) {
      const x = w[r * cols + i];
      const c = Math.min(maxq, Math.max(0, roundEven(x / scaleNow[r]) + zeroNow[r]));
      codes[r * cols + col] = c;
      const q = scaleNow[r] * (c - zeroNow[r]);
      err[r] = (x - q) / d;
    }
    for (let j = i + 1; j < cols; j++) {
      const uij = u(i, j);
      if (uij === 0) continue;
      for (let r = 0; r < rows; r++) w[r * cols + j] -= err[r] * uij;
    }
  }
  return { codes, scales, zeros, groupIndex };
}

/** A GPTQ scheme with `bits` bits. */
function gptqScheme<N extends string>(name: N, bits: 3 | 4): QuantSchemeModule<N> {
  return {
    name,
    summary:
      `GPTQ ${bits}-bit (Frantar et al. 2022): affine per group of blockSize (128) inputs, columns rounded in turn with the inverse-Hessian update (${
        bits === 3 ? "3.2" : bits
      } + 64/blockSize bits/param, + 32/out with actOrder)`,
    options: ["blockSize", "actOrder", "damping", "calibrationItems"],
    defaults: { blockSize: 128 },
    needsCalibration: true,
    quantize: (weight, shape, cfg: ResolvedQuantConfig, calibration: Calibration | null): QuantCodes => {
      if (!calibration) throw new Error(`${name} needs calibration inputs (the layer's input rows)`);
      checkCalibration(calibration.inputs, calibration.rows, shape[1], name);
      const r = gptqQuantize(weight, shape, calibration.inputs, calibration.rows, {
        bits,
        groupSize: cfg.blockSize,
        actOrder: cfg.actOrder,
        damping: cfg.damping,
      });
      return { ...emptyCodes(cfg, shape), ...r };
    },
    dequantizeRows: affineRows,
    layout: (shape, cfg) => affineLayout(shape, cfg, bits as FieldBits, cfg.actOrder),
    pack: (q) => packAffine(q, bits as FieldBits),
    // On native: the C kernel peft_decode_affine reads the same packed buffers (affineRows bit for bit).
    // With actOrder it reads g_idx (`groupIndex`) to find each column's group.
    nativeDecode: { kind: "affine", bits },
  };
}

/** GPTQ 4-bit. */
export const gptq4: QuantSchemeModule<"gptq4"> = gptqScheme("gptq4", 4);
/** GPTQ 3-bit. */
export const gptq3: QuantSchemeModule<"gptq3"> = gptqScheme("gptq3", 3);
