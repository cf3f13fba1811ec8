/**
 * Blockwise absmax 4-bit codes over the flattened weight (the shared body of `int4`, `nf4`, `fp4`)
 * and QLoRA's double quantization of the block constants.
 *
 * - int4: w = (k - 8) · s_b with s_b = absmax_b / 7 and nibble k in 1..15.
 * - nf4 / fp4: w = table[k] · s_b with s_b = absmax_b (table in [-1, 1]).
 * - double quantization: s_b ≈ dyn[q_b] · S_g + mean, g = floor(b / 256).
 *
 * Stored bits per parameter: 4 + 32/blockSize; with double quantization
 * 4 + 8/blockSize + 32/(256 · blockSize) + 32/n (8-bit code per block, an fp32 absmax per 256
 * blocks, one fp32 mean). The shared 16- or 256-entry code tables are constants of the scheme, not
 * of the weight, and are not counted (bitsandbytes likewise shares one code per data type).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { DYNAMIC_CODE_8BIT, nearestCode, sortCode } from "../codes.ts";
import { packFields } from "../pack.ts";
import { emptyCodes, packedWords, roundAway, unpackN } from "./common.ts";
import {
  type DoubleQuantState,
  DQ_BLOCK_SIZE,
  type PackedTensorSpec,
  type QuantSchemeModule,
  type ResolvedQuantConfig,
} from "./types.ts";

const DYN_SORTED = sortCode(DYNAMIC_CODE_8BIT);

/** How a 4-bit absmax scheme maps a value to a nibble, and its decode table. */
interface Absmax4Kind {
  /** Decode table, indexed by nibble. */
  table: Float32Array;
  /** Block scale from the block's absmax. */
  scale(absmax: number): number;
  /** Nibble of x in a block with this absmax and scale (absmax > 0). */
  encode(x: number, absmax: number, scale: number, inv: number): number;
  /** Nibble of every value of an all-zero block. */
  zeroCode: number;
}

/** A blockwise absmax 4-bit scheme. */
export function absmax4Scheme<N extends string>(
  name: N,
  summary: string,
  kind: Absmax4Kind,
): QuantSchemeModule<N> {
  return {
    name,
    summary,
    options: ["blockSize", "doubleQuant"],
    needsCalibration: false,
    quantize: (weight, shape, cfg) => ({ ...emptyCodes(cfg, shape), ...blockwise4(weight, cfg, kind) }),
    dequantizeRows: (q, row0, row1) => {
      const cols = q.shape[1];
      const bs = q.config.blockSize;
      const out = new Float32Array((row1 - row0) * cols);
      const start = row0 * cols;
      for (let i = 0; i < out.length; i++) {
        out[i] = kind.table[q.codes[start + i]] * q.scales[Math.floor((start + i) / bs)];
      }
      return out;
    },
    layout: (shape, cfg) => absmax4Layout(shape, cfg),
    pack: (q) => packAbsmax4(q, kind.table),
    nativeDecode: {
      kind: "absmax4",
      table: kind.table,
      dqTable: DYNAMIC_CODE_8BIT,
      dqBlockSize: DQ_BLOCK_SIZE,
    },
  };
}

/** Packed layout: nibbles, then fp32 scales or the double-quantized constants. */
function absmax4Layout(shape: [number, number], cfg: ResolvedQuantConfig): PackedTensorSpec[] {
  const n = shape[0] * shape[1];
  const nBlocks = Math.ceil(n / cfg.blockSize);
  const codes: PackedTensorSpec = { name: "packed", dtype: "int32", length: packedWords(n, 4) };
  if (!cfg.doubleQuant) return [codes, { name: "scales", dtype: "float32", length: nBlocks }];
  return [
    codes,
    { name: "scaleCodes", dtype: "int32", length: packedWords(nBlocks, 8) },
    { name: "scaleBlockScales", dtype: "float32", length: Math.ceil(nBlocks / DQ_BLOCK_SIZE) },
    { name: "scaleMean", dtype: "float32", length: 1 },
  ];
}

/** Blockwise absmax 4-bit codes over the flattened weight; a short last block is allowed. */
function blockwise4(weight: Float32Array, cfg: ResolvedQuantConfig, kind: Absmax4Kind) {
  const bs = cfg.blockSize;
  const n = weight.length;
  const nBlocks = Math.ceil(n / bs);
  const codes = new Uint8Array(n);
  const firstScales = new Float32Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const end = Math.min(n, (b + 1) * bs);
    let absmax = 0;
    for (let i = b * bs; i < end; i++) absmax = Math.max(absmax, Math.abs(weight[i]));
    const s = kind.scale(absmax);
    firstScales[b] = s;
    // bitsandbytes multiplies by the float32 reciprocal of absmax (kQuantizeBlockwise).
    const inv = Math.fround(1 / absmax);
    for (let i = b * bs; i < end; i++) {
      codes[i] = absmax === 0 ? kind.zeroCode : kind.encode(weight[i], absmax, s, inv);
    }
  }
  if (!cfg.doubleQuant) return { codes, scales: firstScales };
  const doubleQuant = doubleQuantize(firstScales);
  return { codes, scales: decodeScales(doubleQuant, nBlocks), doubleQuant };
}

/** int4's nibble: round(x / s) clamped to [-7, 7], offset by 8. */
export const INT4_KIND = (table: Float32Array): Absmax4Kind => ({
  table,
  scale: (absmax) => Math.fround(absmax / 7),
  encode: (x, _absmax, s) => Math.max(-7, Math.min(7, roundAway(x / s))) + 8,
  zeroCode: 8,
});

/** A code-table scheme: nearest code of x · fround(1 / absmax) (nf4), or sign bit + magnitude (fp4). */
export function tableKind(table: Float32Array, signMagnitude: boolean, zeroCode: number): Absmax4Kind {
  const sorted = sortCode(signMagnitude ? table.subarray(0, 8) : table);
  return {
    table,
    scale: (absmax) => absmax,
    encode: signMagnitude
      ? (x, _a, _s, inv) => (x < 0 ? 8 : 0) | nearestCode(sorted, Math.abs(Math.fround(x * inv)))
      : (x, _a, _s, inv) => nearestCode(sorted, Math.fround(x * inv)),
    zeroCode,
  };
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

/** Pack nibbles and constants; the decoder gathers table values and multiplies by block scales. */
function packAbsmax4(q: ReturnType<typeof emptyCodes>, table: Float32Array) {
  const [rows, cols] = q.shape;
  const n = rows * cols;
  const bs = q.config.blockSize;
  const nBlocks = Math.ceil(n / bs);
  const tensors: Record<string, tf.Tensor> = {};
  const packed = tensors.packed = tf.tensor1d(packFields(q.codes, 4), "int32");
  let scales: () => tf.Tensor;
  if (q.doubleQuant) {
    const dq = q.doubleQuant;
    const nGroups = dq.blockScales.length;
    const sc = tensors.scaleCodes = tf.tensor1d(packFields(dq.codes, 8), "int32");
    const sbs = tensors.scaleBlockScales = tf.tensor2d(dq.blockScales, [nGroups, 1]);
    const mean = tensors.scaleMean = tf.tensor1d([dq.mean]);
    scales = () => {
      const v = tf.gather(tf.tensor1d(DYNAMIC_CODE_8BIT), tf.cast(unpackN(sc, 8, nBlocks), "int32"));
      const grouped = tf.reshape(tf.pad(v, [[0, nGroups * DQ_BLOCK_SIZE - nBlocks]]), [
        nGroups,
        DQ_BLOCK_SIZE,
      ]);
      return tf.add(tf.slice(tf.reshape(tf.mul(grouped, sbs), [-1]), 0, nBlocks), mean);
    };
  } else {
    const s = tensors.scales = tf.tensor1d(q.scales);
    scales = () => s;
  }
  return {
    tensors,
    decode: () => {
      const v = tf.gather(tf.tensor1d(table), tf.cast(unpackN(packed, 4, n), "int32"));
      const blocks = tf.reshape(tf.pad(v, [[0, nBlocks * bs - n]]), [nBlocks, bs]);
      const w = tf.mul(blocks, tf.reshape(scales(), [nBlocks, 1]));
      return tf.slice(tf.reshape(w, [-1]), 0, n);
    },
  };
}
