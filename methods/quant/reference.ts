/**
 * Pure-TypeScript quantization: weight -> codes + constants ({@link quantizeCodes}) and
 * codes -> float32 weight ({@link dequantizeArray}). The tfjs path in `quantize.ts` packs these
 * codes and decodes them with tensor ops to the identical float32 values.
 *
 * Decoding formulas (every product rounded once to float32, as a float32 multiply does):
 * - int8 / llm-int8: w[i,j] = (c - 128) · s_i with s_i = absmax_i / 127, c = code + 128 in 1..255.
 * - int4: w = (k - 8) · s_b with s_b = absmax_b / 7 and nibble k in 1..15.
 * - nf4 / fp4: w = table[k] · s_b with s_b = absmax_b (table in [-1, 1]).
 * - double quantization: s_b ≈ dyn[q_b] · S_g + mean, g = floor(b / 256).
 * @module
 */
import { DYNAMIC_CODE_8BIT, FP4_CODE, INT4_CODE, nearestCode, NF4_CODE, sortCode } from "./codes.ts";
import { DQ_BLOCK_SIZE, type QuantConfig, type ResolvedQuantConfig, validateQuantConfig } from "./config.ts";
import { FP16_MAX, fromBf16Bits, fromFp16Bits, toBf16Bits, toFp16Bits } from "./half.ts";

/** Double-quantized per-block scales: s_b ≈ fround(fround(dyn[codes[b]] · blockScales[g]) + mean). */
export interface DoubleQuantState {
  /** Index into {@link DYNAMIC_CODE_8BIT} for each first-level block. */
  codes: Uint8Array;
  /** absmax of (s - mean) over each group of 256 first-level scales. */
  blockScales: Float32Array;
  /** Mean of the first-level scales (float32). */
  mean: number;
}

/** Unpacked quantization state, the common input of the reference decoder and the packer. */
export interface QuantCodes {
  /** The validated config. */
  config: ResolvedQuantConfig;
  /** [out, in]. */
  shape: [number, number];
  /**
   * Per-element codes. none: the fp32 values; fp16/bf16: 16-bit patterns; int8: code + 128 per
   * element, row-major; llm-int8: the same over the non-outlier columns only, row-major
   * [out, in - outliers]; int4/nf4/fp4: 4-bit codes over the flattened weight.
   */
  codes: Float32Array | Uint16Array | Uint8Array;
  /** Decode-time scale per row (int8, llm-int8) or per block (4-bit; after double quantization). */
  scales: Float32Array;
  /** Double quantization state (4-bit schemes with doubleQuant), else null. */
  doubleQuant: DoubleQuantState | null;
  /** llm-int8: outlier input-column indices, ascending (empty otherwise). */
  outlierColumns: Int32Array;
  /** llm-int8: outlier columns' fp32 values, row-major [out, outlierColumns.length]. */
  outlierValues: Float32Array;
}

const NF4_SORTED = sortCode(NF4_CODE);
const FP4_MAG_SORTED = sortCode(FP4_CODE.subarray(0, 8));
const DYN_SORTED = sortCode(DYNAMIC_CODE_8BIT);

/** The 16-entry decode table of a 4-bit scheme. */
export function tableFor(scheme: "int4" | "nf4" | "fp4"): Float32Array {
  return scheme === "int4" ? INT4_CODE : scheme === "nf4" ? NF4_CODE : FP4_CODE;
}

/** Check a weight buffer against its shape; throws one clear line. */
export function checkWeight(weight: Float32Array, shape: [number, number]): void {
  if (!(weight instanceof Float32Array)) {
    throw new Error("weight must be a Float32Array (row-major [out, in])");
  }
  if (
    !Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new Error(`weight shape must be [out, in] with positive integers, got ${JSON.stringify(shape)}`);
  }
  if (weight.length !== shape[0] * shape[1]) {
    throw new Error(
      `weight has ${weight.length} values but shape [${shape}] needs ${
        shape[0] * shape[1]
      }; pass the matching shape`,
    );
  }
  for (let i = 0; i < weight.length; i++) {
    if (!Number.isFinite(weight[i])) {
      throw new Error(`weight value ${i} is ${weight[i]}; quantization needs finite weights`);
    }
  }
}

/** Round half away from zero (C `roundf`). */
function roundAway(v: number): number {
  return Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
}

/** Quantize a weight to codes and constants (see module doc for the formulas). */
export function quantizeCodes(
  weight: Float32Array,
  shape: [number, number],
  config: QuantConfig | ResolvedQuantConfig,
): QuantCodes {
  const cfg = validateQuantConfig(config);
  checkWeight(weight, shape);
  const base: QuantCodes = {
    config: cfg,
    shape: [shape[0], shape[1]],
    codes: new Uint8Array(0),
    scales: new Float32Array(0),
    doubleQuant: null,
    outlierColumns: new Int32Array(0),
    outlierValues: new Float32Array(0),
  };
  switch (cfg.scheme) {
    case "none":
      return { ...base, codes: weight.slice() };
    case "fp16": {
      const codes = new Uint16Array(weight.length);
      for (let i = 0; i < weight.length; i++) {
        codes[i] = toFp16Bits(weight[i]);
        if ((codes[i] & 0x7c00) === 0x7c00) {
          throw new Error(
            `weight value ${i} = ${weight[i]} overflows fp16 (max ${FP16_MAX}); use scheme 'bf16'`,
          );
        }
      }
      return { ...base, codes };
    }
    case "bf16": {
      const codes = new Uint16Array(weight.length);
      for (let i = 0; i < weight.length; i++) codes[i] = toBf16Bits(weight[i]);
      return { ...base, codes };
    }
    case "int8":
      return { ...base, ...rowwiseInt8(weight, shape, new Uint8Array(shape[1])) };
    case "llm-int8":
      return { ...base, ...llmInt8(weight, shape, cfg.outlierThreshold) };
    default:
      return { ...base, ...blockwise4(weight, cfg) };
  }
}

/** Row-wise absmax int8 over the columns with isOutlier[j] = 0. */
function rowwiseInt8(weight: Float32Array, shape: [number, number], isOutlier: Uint8Array) {
  const [rows, cols] = shape;
  let kept = 0;
  for (let j = 0; j < cols; j++) if (!isOutlier[j]) kept++;
  const codes = new Uint8Array(rows * kept);
  const scales = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let absmax = 0;
    for (let j = 0; j < cols; j++) {
      if (!isOutlier[j]) absmax = Math.max(absmax, Math.abs(weight[i * cols + j]));
    }
    const s = Math.fround(absmax / 127);
    scales[i] = s;
    let t = i * kept;
    for (let j = 0; j < cols; j++) {
      if (isOutlier[j]) continue;
      // s rounds to float32, so x/s may exceed 127 by an ulp: clamp.
      const q = s === 0 ? 0 : Math.max(-127, Math.min(127, roundAway(weight[i * cols + j] / s)));
      codes[t++] = q + 128;
    }
  }
  return { codes, scales };
}

/**
 * LLM.int8() for the weight alone: input column j is an outlier column when
 * max_i |W[i, j]| >= threshold; those columns stay fp32, the rest get row-wise int8 with the
 * row absmax taken over the non-outlier columns only (so outliers do not inflate the step).
 */
function llmInt8(weight: Float32Array, shape: [number, number], threshold: number) {
  const [rows, cols] = shape;
  const isOutlier = new Uint8Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) if (Math.abs(weight[i * cols + j]) >= threshold) isOutlier[j] = 1;
  }
  const outlierColumns = Int32Array.from(Array.from(isOutlier.keys()).filter((j) => isOutlier[j]));
  const outlierValues = new Float32Array(rows * outlierColumns.length);
  for (let i = 0; i < rows; i++) {
    outlierColumns.forEach((j, u) => outlierValues[i * outlierColumns.length + u] = weight[i * cols + j]);
  }
  return { ...rowwiseInt8(weight, shape, isOutlier), outlierColumns, outlierValues };
}

/** Blockwise absmax 4-bit codes over the flattened weight; a short last block is allowed. */
function blockwise4(weight: Float32Array, cfg: ResolvedQuantConfig) {
  const scheme = cfg.scheme as "int4" | "nf4" | "fp4";
  const bs = cfg.blockSize;
  const n = weight.length;
  const nBlocks = Math.ceil(n / bs);
  const codes = new Uint8Array(n);
  const firstScales = new Float32Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const end = Math.min(n, (b + 1) * bs);
    let absmax = 0;
    for (let i = b * bs; i < end; i++) absmax = Math.max(absmax, Math.abs(weight[i]));
    const s = scheme === "int4" ? Math.fround(absmax / 7) : absmax;
    firstScales[b] = s;
    // bitsandbytes multiplies by the float32 reciprocal of absmax (kQuantizeBlockwise).
    const inv = Math.fround(1 / absmax);
    for (let i = b * bs; i < end; i++) {
      const x = weight[i];
      if (absmax === 0) codes[i] = scheme === "int4" ? 8 : scheme === "nf4" ? 7 : 0;
      else if (scheme === "int4") codes[i] = Math.max(-7, Math.min(7, roundAway(x / s))) + 8;
      else if (scheme === "nf4") codes[i] = nearestCode(NF4_SORTED, Math.fround(x * inv));
      else codes[i] = (x < 0 ? 8 : 0) | nearestCode(FP4_MAG_SORTED, Math.abs(Math.fround(x * inv)));
    }
  }
  if (!cfg.doubleQuant) return { codes, scales: firstScales };
  const doubleQuant = doubleQuantize(firstScales);
  return { codes, scales: decodeScales(doubleQuant, nBlocks), doubleQuant };
}

/**
 * QLoRA double quantization (bitsandbytes `quantize_4bit(compress_statistics=True)`): subtract
 * the mean of the scales, then blockwise-quantize the centred scales with the dynamic 8-bit map
 * in groups of 256 (absmax per group, nearest code). The 4-bit codes are computed with the
 * original scales, as bitsandbytes does, so decoding adds this second rounding error.
 */
export function doubleQuantize(scales: Float32Array): DoubleQuantState {
  let sum = 0;
  for (const s of scales) sum += s;
  const mean = Math.fround(sum / scales.length);
  const nGroups = Math.ceil(scales.length / DQ_BLOCK_SIZE);
  const codes = new Uint8Array(scales.length);
  const blockScales = new Float32Array(nGroups);
  for (let g = 0; g < nGroups; g++) {
    const end = Math.min(scales.length, (g + 1) * DQ_BLOCK_SIZE);
    let absmax = 0;
    for (let b = g * DQ_BLOCK_SIZE; b < end; b++) {
      absmax = Math.max(absmax, Math.abs(Math.fround(scales[b] - mean)));
    }
    blockScales[g] = absmax;
    const inv = Math.fround(1 / absmax);
    for (let b = g * DQ_BLOCK_SIZE; b < end; b++) {
      const c = Math.fround(scales[b] - mean);
      codes[b] = nearestCode(DYN_SORTED, absmax === 0 ? 0 : Math.fround(c * inv));
    }
  }
  return { codes, blockScales, mean };
}

/** Decoded first-level scales: fround(fround(dyn[q_b] · S_g) + mean). */
export function decodeScales(dq: DoubleQuantState, nBlocks: number): Float32Array {
  const out = new Float32Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const v = Math.fround(DYNAMIC_CODE_8BIT[dq.codes[b]] * dq.blockScales[Math.floor(b / DQ_BLOCK_SIZE)]);
    out[b] = Math.fround(v + dq.mean);
  }
  return out;
}

/** Decode codes back to a row-major float32 [out, in] weight (the reference for `dequantize()`). */
export function dequantizeArray(q: QuantCodes): Float32Array {
  const [rows, cols] = q.shape;
  const n = rows * cols;
  const out = new Float32Array(n);
  const c = q.codes;
  switch (q.config.scheme) {
    case "none":
      out.set(c);
      return out;
    case "fp16":
      for (let i = 0; i < n; i++) out[i] = fromFp16Bits(c[i]);
      return out;
    case "bf16":
      for (let i = 0; i < n; i++) out[i] = fromBf16Bits(c[i]);
      return out;
    case "int8":
    case "llm-int8": {
      const nOut = q.outlierColumns.length;
      const kept = cols - nOut;
      for (let i = 0; i < rows; i++) {
        let t = i * kept;
        let u = 0;
        for (let j = 0; j < cols; j++) {
          if (u < nOut && q.outlierColumns[u] === j) out[i * cols + j] = q.outlierValues[i * nOut + u++];
          else out[i * cols + j] = (c[t++] - 128) * q.scales[i];
        }
      }
      return out;
    }
    default: {
      const table = tableFor(q.config.scheme as "int4" | "nf4" | "fp4");
      const bs = q.config.blockSize;
      for (let i = 0; i < n; i++) out[i] = table[c[i]] * q.scales[Math.floor(i / bs)];
      return out;
    }
  }
}
