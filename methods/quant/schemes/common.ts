/**
 * Pieces several schemes share: the empty code state, C rounding, tfjs unpacking, row-wise int8
 * and the affine per-group (scale, zero) layout of HQQ and GPTQ.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type FieldBits, fieldsPerWord, packFields, unpackFieldsTf } from "../pack.ts";
import type { PackedTensorSpec, PackedWeight, QuantCodes, ResolvedQuantConfig } from "./types.ts";

/** A code state with every optional part empty. */
export function emptyCodes(cfg: ResolvedQuantConfig, shape: [number, number]): QuantCodes {
  return {
    config: cfg,
    shape: [shape[0], shape[1]],
    codes: new Uint8Array(0),
    scales: new Float32Array(0),
    doubleQuant: null,
    outlierColumns: new Int32Array(0),
    outlierValues: new Float32Array(0),
    zeros: new Float32Array(0),
    groupIndex: new Int32Array(0),
  };
}

/** Round half away from zero (C `roundf`). */
export function roundAway(v: number): number {
  return Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
}

/** Round half to even (torch.round, IEEE default). */
export function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Int32 words holding `count` fields of `bits` bits. */
export function packedWords(count: number, bits: FieldBits): number {
  return Math.ceil(count / fieldsPerWord(bits));
}

/** The first `count` unpacked fields as float32 (integer values). Call inside tidy. */
export function unpackN(packed: tf.Tensor, bits: FieldBits, count: number): tf.Tensor1D {
  return tf.slice(unpackFieldsTf(packed as tf.Tensor1D, bits), 0, count);
}

/** Row-wise absmax int8 codes (code + 128 per element) and per-row scales absmax / 127. */
export function rowwiseInt8(weight: Float32Array, shape: [number, number]) {
  const [rows, cols] = shape;
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let absmax = 0;
    for (let j = 0; j < cols; j++) absmax = Math.max(absmax, Math.abs(weight[i * cols + j]));
    const s = Math.fround(absmax / 127);
    scales[i] = s;
    for (let j = 0; j < cols; j++) {
      // s rounds to float32, so x/s may exceed 127 by an ulp: clamp.
      const q = s === 0 ? 0 : Math.max(-127, Math.min(127, roundAway(weight[i * cols + j] / s)));
      codes[i * cols + j] = q + 128;
    }
  }
  return { codes, scales };
}

/** Reference decode of row-wise int8 rows [row0, row1). */
export function rowwiseInt8Rows(q: QuantCodes, row0: number, row1: number): Float32Array {
  const cols = q.shape[1];
  const out = new Float32Array((row1 - row0) * cols);
  for (let i = row0; i < row1; i++) {
    for (let j = 0; j < cols; j++) out[(i - row0) * cols + j] = (q.codes[i * cols + j] - 128) * q.scales[i];
  }
  return out;
}

/** Packed layout of row-wise int8. */
export function rowwiseInt8Layout(shape: [number, number]): PackedTensorSpec[] {
  return [
    { name: "packed", dtype: "int32", length: packedWords(shape[0] * shape[1], 8) },
    { name: "scales", dtype: "float32", length: shape[0] },
  ];
}

/** Pack row-wise int8 codes; the decoder is (c - 128) · s_row, as {@link rowwiseInt8Rows}. */
export function packRowwiseInt8(q: QuantCodes): PackedWeight {
  const [rows, cols] = q.shape;
  const packed = tf.tensor1d(packFields(q.codes, 8), "int32");
  const scales = tf.tensor2d(q.scales, [rows, 1]);
  return {
    tensors: { packed, scales },
    decode: () => tf.mul(tf.reshape(tf.sub(unpackN(packed, 8, rows * cols), 128), [rows, cols]), scales),
  };
}

/**
 * Affine per-group layout shared by HQQ and GPTQ: groups of `blockSize` consecutive input columns
 * of a row (a short last group when in % blockSize != 0), so row i has G = ceil(in / blockSize)
 * groups and group (i, g) decodes `w = (c - z[i, g]) · s[i, g]`. Codes are `bits`-bit fields,
 * row-major; scales and zeros are float32 [out, G]. GPTQ with act-order instead maps column j to
 * group groupIndex[j] (its `g_idx`), stored as one int32 per input column.
 */
export function groupsPerRow(cols: number, blockSize: number): number {
  return Math.ceil(cols / blockSize);
}

/** Group of column j: g_idx when present, else floor(j / blockSize). */
function groupOf(q: QuantCodes, j: number): number {
  return q.groupIndex.length > 0 ? q.groupIndex[j] : Math.floor(j / q.config.blockSize);
}

/** Reference decode of affine group rows [row0, row1): fround((c - z) · s) per element. */
export function affineRows(q: QuantCodes, row0: number, row1: number): Float32Array {
  const cols = q.shape[1];
  const G = groupsPerRow(cols, q.config.blockSize);
  const out = new Float32Array((row1 - row0) * cols);
  for (let i = row0; i < row1; i++) {
    for (let j = 0; j < cols; j++) {
      const g = i * G + groupOf(q, j);
      out[(i - row0) * cols + j] = Math.fround(q.codes[i * cols + j] - q.zeros[g]) * q.scales[g];
    }
  }
  return out;
}

/** Packed layout of the affine group schemes. */
export function affineLayout(
  shape: [number, number],
  cfg: ResolvedQuantConfig,
  bits: FieldBits,
  withGroupIndex: boolean,
): PackedTensorSpec[] {
  const [rows, cols] = shape;
  const G = groupsPerRow(cols, cfg.blockSize);
  const specs: PackedTensorSpec[] = [
    { name: "packed", dtype: "int32", length: packedWords(rows * cols, bits) },
    { name: "scales", dtype: "float32", length: rows * G },
    { name: "zeros", dtype: "float32", length: rows * G },
  ];
  if (withGroupIndex) specs.push({ name: "groupIndex", dtype: "int32", length: cols });
  return specs;
}

/**
 * Pack affine group codes. The decoder expands the [out, G] scales and zeros to [out, in] with a
 * gather over columns (the column -> group map: floor(j / blockSize) or g_idx), then computes
 * (c - z) · s in float32, the same two roundings as {@link affineRows}.
 */
export function packAffine(q: QuantCodes, bits: FieldBits): PackedWeight {
  const [rows, cols] = q.shape;
  const G = groupsPerRow(cols, q.config.blockSize);
  const tensors: Record<string, tf.Tensor> = {
    packed: tf.tensor1d(packFields(q.codes, bits), "int32"),
    scales: tf.tensor2d(q.scales, [rows, G]),
    zeros: tf.tensor2d(q.zeros, [rows, G]),
  };
  if (q.groupIndex.length > 0) tensors.groupIndex = tf.tensor1d(q.groupIndex, "int32");
  // Without g_idx the column -> group map follows from the config (a constant of the layout, like
  // the code tables), so it is built inside the decode's tidy rather than stored.
  const plainGroups = Int32Array.from({ length: cols }, (_, j) => Math.floor(j / q.config.blockSize));
  return {
    tensors,
    decode: () => {
      const columnGroups = tensors.groupIndex ?? tf.tensor1d(plainGroups, "int32");
      const c = tf.reshape(unpackN(tensors.packed, bits, rows * cols), [rows, cols]);
      const s = tf.gather(tensors.scales, columnGroups, 1);
      const z = tf.gather(tensors.zeros, columnGroups, 1);
      return tf.mul(tf.sub(c, z), s);
    },
  };
}

/** Weight-shape sanity for calibration inputs; throws one line naming the problem. */
export function checkCalibration(
  inputs: Float32Array,
  rows: number,
  cols: number,
  scheme: string,
): void {
  if (!(inputs instanceof Float32Array) || !Number.isInteger(rows) || rows < 1) {
    throw new Error(`${scheme}: calibration inputs must be a Float32Array of rows x ${cols} with rows >= 1`);
  }
  if (inputs.length !== rows * cols) {
    throw new Error(
      `${scheme}: calibration inputs hold ${inputs.length} values but ${rows} rows x ${cols} input features need ${
        rows * cols
      }`,
    );
  }
  for (let i = 0; i < inputs.length; i++) {
    if (!Number.isFinite(inputs[i])) {
      throw new Error(`${scheme}: calibration input value ${i} is ${inputs[i]}`);
    }
  }
}
