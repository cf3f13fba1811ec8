/**
 * `hqq4`, `hqq3`, `hqq2`: Half-Quadratic Quantization (Badri & Shaji 2023, "Half-Quadratic
 * Quantization of Large Machine Learning Models", mobiusml/hqq), calibration-free.
 *
 * Affine min-max quantization per group of `blockSize` consecutive input columns of a row (hqq's
 * `axis=1`; default group size 64, hqq's `hqq_base_quant_config(group_size=64)`), with the zero
 * point refined by hqq's proximal solver `optimize_weights_proximal` (hqq/core/optimize.py), which
 * minimises ||W - dequantize(quantize(W))||_p^p, p < 1, by half-quadratic splitting with an extra
 * variable W_e for the error:
 *
 *   inverse scale  S = min((2^b - 1) / (max_g - min_g), 2e4),  zero z = -min_g · S
 *                  (rounded to an integer for 4 bits: `round_zero=True if nbits == 4`)
 *   repeat iters = 20 times, beta = 10, kappa = 1.01, lp_norm p = 0.7 (hqq's `opt_params` defaults):
 *     W_q = clamp(round(W · S + z), 0, 2^b - 1)
 *     W_r = (W_q - z) / S
 *     W_e = shrink_p(W - W_r, beta),  shrink_p(x, beta) = sign(x) · relu(|x| - |x|^(p-1) / beta)
 *     z   = mean over the group of (W_q - (W - W_e) · S)
 *     beta = kappa · beta
 *     stop when mean |W - W_r| (over the whole weight) no longer decreases
 *   codes W_q = clamp(round(W · S + z), 0, 2^b - 1); decode w = (c - z) · s with s = 1 / S.
 *
 * As in hqq, the scale stays at its min-max value (only z is optimised), rounding is half to even
 * (torch.round), and the zero updated in the iteration that triggers the early stop is the one
 * kept. Stored: b-bit codes (2-bit 16 per int32, 3-bit 10 per int32 as hqq's `pack_3bit_32`, 4-bit
 * 8 per int32) plus an fp32 scale and an fp32 zero per group (hqq keeps them in fp16; we count our
 * fp32): about b + 64 / blockSize bits per parameter (3.2 + 64/blockSize for 3 bits).
 * @module
 */
import type { FieldBits } from "../pack.ts";
import { affineLayout, affineRows, emptyCodes, groupsPerRow, packAffine, roundEven } from "./common.ts";
import type { QuantCodes, QuantSchemeModule, ResolvedQuantConfig } from "./types.ts";

/** hqq's `optimize_weights_proximal` defaults (`opt_params`). */
export const HQQ_DEFAULTS = { lpNorm: 0.7, beta: 10, kappa: 1.01, iters: 20 } as const;
/** hqq clamps the inverse scale to avoid half-precision overflow. */
const MAX_INV_SCALE = 2e4;

/** hqq's generalized soft-thresholding `shrink_lp_op`: sign(x) · relu(|x| - |x|^(p-1) / beta). */
export function shrinkLp(x: number, beta: number, p: number): number {
  const a = Math.abs(x);
  const t = p === 1 ? a - 1 / beta : a - Math.pow(a, p - 1) / beta;
  return t > 0 ? Math.sign(x) * t : 0;
}

/** Optimiser settings (hqq's defaults unless a test varies them). */
export interface HqqOptions {
  /** p of the lp-norm. */
  lpNorm: number;
  /** Initial half-quadratic penalty beta. */
  beta: number;
  /** beta's growth per iteration. */
  kappa: number;
  /** Maximum iterations. */
  iters: number;
}

/**
 * HQQ on a row-major [out, in] weight: codes, scales s = 1/S and zeros per (row, group), and the
 * mean-absolute error of each iteration (for tests).
 */
export function hqqQuantize(
  weight: Float32Array,
  shape: [number, number],
  bits: 2 | 3 | 4,
  groupSize: number,
  options: HqqOptions = HQQ_DEFAULTS,
): { codes: Uint8Array; scales: Float32Array; zeros: Float32Array; errors: number[] } {
  const [rows, cols] = shape;
  const G = groupsPerRow(cols, groupSize);
  const maxq = 2 ** bits - 1;
  const inv = new Float64Array(rows * G); // S per group
  const zero = new Float64Array(rows * G);
  for (let i = 0; i < rows; i++) {
    for (let g = 0; g < G; g++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = g * groupSize; j < Math.min(cols, (g + 1) * groupSize); j++) {
        const v = weight[i * cols + j];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      // A constant group has max = min: hqq's clamp turns the infinite inverse scale into 2e4.
      const s = hi > lo ? Math.min(maxq / (hi - lo), MAX_INV_SCALE) : MAX_INV_SCALE;
      inv[i * G + g] = s;
      zero[i * G + g] = bits === 4 ? roundEven(-lo * s) : -lo * s;
    }
  }
  const quant = (v: number, k: number) => Math.min(maxq, Math.max(0, roundEven(v * inv[k] + zero[k])));
  const errors: number[] = [];
  let beta = options.beta;
  let best = 1e4; // hqq's initial best_error
  const sums = new Float64Array(rows * G);
  const counts = new Float64Array(rows * G);
  for (let it = 0; it < options.iters; it++) {
    sums.fill(0);
    counts.fill(0);
    let absErr = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const k = i * G + Math.floor(j / groupSize);
        const w = weight[i * cols + j];
        const q = quant(w, k);
        const r = (q - zero[k]) / inv[k];
        const e = shrinkLp(w - r, beta, options.lpNorm);
        sums[k] += q - (w - e) * inv[k];
        counts[k]++;
        absErr += Math.abs(w - r);
      }
    }
    for (let k = 0; k < sums.length; k++) zero[k] = sums[k] / counts[k];
    beta *= options.kappa;
    const err = absErr / weight.length;
    errors.push(err);
    if (err < best) best = err;
    else break;
  }
  const codes = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      codes[i * cols + j] = quant(weight[i * cols + j], i * G + Math.floor(j / groupSize));
    }
  }
  return {
    codes,
    scales: Float32Array.from(inv, (s) => 1 / s),
    zeros: Float32Array.from(zero),
    errors,
  };
}

/** An HQQ scheme with `bits` bits. */
function hqqScheme<N extends string>(name: N, bits: 2 | 3 | 4): QuantSchemeModule<N> {
  return {
    name,
    summary:
      `HQQ ${bits}-bit (Badri & Shaji 2023): min-max affine per group of blockSize (64) inputs, zero point by hqq's proximal solver (${
        bits === 3 ? "3.2" : bits
      } + 64/blockSize bits/param)`,
    options: ["blockSize"],
    needsCalibration: false,
    quantize: (weight: Float32Array, shape: [number, number], cfg: ResolvedQuantConfig): QuantCodes => {
      const { codes, scales, zeros } = hqqQuantize(weight, shape, bits, cfg.blockSize);
      return { ...emptyCodes(cfg, shape), codes, scales, zeros };
    },
    dequantizeRows: affineRows,
    layout: (shape, cfg) => affineLayout(shape, cfg, bits as FieldBits, false),
    pack: (q) => packAffine(q, bits as FieldBits),
    // On native: the C kernel peft_decode_affine reads the same packed buffers (affineRows bit for bit).
    nativeDecode: { kind: "affine", bits },
  };
}

/** HQQ 4-bit. */
export const hqq4: QuantSchemeModule<"hqq4"> = hqqScheme("hqq4", 4);
/** HQQ 3-bit. */
export const hqq3: QuantSchemeModule<"hqq3"> = hqqScheme("hqq3", 3);
/** HQQ 2-bit. */
export const hqq2: QuantSchemeModule<"hqq2"> = hqqScheme("hqq2", 2);
