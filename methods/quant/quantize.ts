/**
 * Quantized frozen weights as tfjs tensors, decoded on the fly.
 *
 * {@link quantize} packs the codes of `reference.ts` into int32 tensors (see `pack.ts` for the
 * layout) plus float32 constants; {@link QuantizedWeight.dequantize} rebuilds a fresh float32
 * [out, in] tensor with tfjs ops each call (no float copy stays resident), equal bit for bit to
 * `dequantizeArray` on the cpu and wasm backends. Stored tensors by scheme:
 *
 * | scheme   | tensors (dtype, length)                                                            |
 * |----------|------------------------------------------------------------------------------------|
 * | none     | values (f32, n)                                                                    |
 * | fp16/bf16| packed (i32, ceil(n/2)): 16-bit patterns, 2 per word                               |
 * | int8     | packed (i32, ceil(n/4)): code+128, 4 per word; scales (f32, out)                   |
 * | llm-int8 | packed (i32, ceil(out·k/4)), k = in - outliers; scales (f32, out);                 |
 * |          | outlierValues (f32, out·outliers); outlierColumns (i32, outliers)                  |
 * | 4-bit    | packed (i32, ceil(n/8)): 4-bit codes, 8 per word; scales (f32, ceil(n/blockSize))  |
 * | + dq     | instead of scales: scaleCodes (i32, ceil(blocks/4)), scaleBlockScales              |
 * |          | (f32, ceil(blocks/256)), scaleMean (f32 scalar)                                    |
 *
 * storedBytes = 4 · (total elements of these tensors). The shared code tables (16 or 256 floats)
 * are constants of the scheme, not of the weight, and are not counted (bitsandbytes likewise
 * shares one code per data type).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { DYNAMIC_CODE_8BIT } from "./codes.ts";
import { DQ_BLOCK_SIZE, type QuantConfig, type QuantScheme, type ResolvedQuantConfig } from "./config.ts";
import { halfDecodeTables } from "./half.ts";
import { packFields, unpackFieldsTf } from "./pack.ts";
import { type QuantCodes, quantizeCodes, tableFor } from "./reference.ts";

/** A quantized [out, in] weight. */
export interface QuantizedWeight {
  /** The scheme. */
  readonly scheme: QuantScheme;
  /** The validated config it was built with. */
  readonly config: ResolvedQuantConfig;
  /** [out, in]. */
  readonly shape: [number, number];
  /** Bytes of all stored tensors (int32 and float32 elements, 4 bytes each). */
  readonly storedBytes: number;
  /** storedBytes · 8 / (out · in). */
  readonly bitsPerParam: number;
  /** The stored tensors, by name (see the module table). */
  readonly tensors: Readonly<Record<string, tf.Tensor>>;
  /** A fresh float32 [out, in] tensor decoded from the stored tensors; the caller disposes it. */
  dequantize(): tf.Tensor2D;
  /** Free the stored tensors. */
  dispose(): void;
}

/** Quantize a row-major float32 [out, in] weight (validates config and weight; one-line errors). */
export function quantize(
  weight: Float32Array,
  shape: [number, number],
  config: QuantConfig | ResolvedQuantConfig,
): QuantizedWeight {
  return fromCodes(quantizeCodes(weight, shape, config));
}

/** Build the packed tensors and the decoder from reference codes. */
export function fromCodes(q: QuantCodes): QuantizedWeight {
  const [rows, cols] = q.shape;
  const n = rows * cols;
  const cfg = q.config;
  const tensors: Record<string, tf.Tensor> = {};
  let decode: () => tf.Tensor;
  switch (cfg.scheme) {
    case "none": {
      const values = tensors.values = tf.tensor2d(q.codes as Float32Array, [rows, cols]);
      decode = () => tf.clone(values);
      break;
    }
    case "fp16":
    case "bf16": {
      const packed = tensors.packed = tf.tensor1d(packFields(q.codes, 16), "int32");
      decode = () => decodeHalf(unpackN(packed, 16, n), cfg.scheme as "fp16" | "bf16");
      break;
    }
    case "int8":
    case "llm-int8": {
      const kept = cols - q.outlierColumns.length;
      const packed = kept > 0 ? (tensors.packed = tf.tensor1d(packFields(q.codes, 8), "int32")) : null;
      const scales = tensors.scales = tf.tensor2d(q.scales, [rows, 1]);
      if (cfg.scheme === "int8") {
        decode = () => tf.mul(tf.reshape(tf.sub(unpackN(packed!, 8, n), 128), [rows, cols]), scales);
        break;
      }
      const nOut = q.outlierColumns.length;
      const outVals = tensors.outlierValues = tf.tensor2d(q.outlierValues, [rows, nOut]);
      tensors.outlierColumns = tf.tensor1d(q.outlierColumns, "int32");
      // Column j of the result is column perm[j] of concat([inliers, outliers], axis 1).
      const perm = new Int32Array(cols);
      let t = 0;
      let u = 0;
      for (let j = 0; j < cols; j++) perm[j] = u < nOut && q.outlierColumns[u] === j ? kept + u++ : t++;
      decode = () => {
        if (nOut === 0 || kept === 0) {
          return nOut === 0
            ? tf.mul(tf.reshape(tf.sub(unpackN(packed!, 8, n), 128), [rows, cols]), scales)
            : tf.clone(outVals);
        }
        const inl = tf.mul(tf.reshape(tf.sub(unpackN(packed!, 8, rows * kept), 128), [rows, kept]), scales);
        return tf.gather(tf.concat([inl, outVals], 1), tf.tensor1d(perm, "int32"), 1);
      };
      break;
    }
    default: {
      const bs = cfg.blockSize;
      const nBlocks = Math.ceil(n / bs);
      const table = tableFor(cfg.scheme as "int4" | "nf4" | "fp4");
      const packed = tensors.packed = tf.tensor1d(packFields(q.codes, 4), "int32");
      let scales: () => tf.Tensor;
      if (q.doubleQuant) {
        const dq = q.doubleQuant;
        const nGroups = dq.blockScales.length;
        const sc = tensors.scaleCodes = tf.tensor1d(packFields(dq.codes, 8), "int32");
        const sbs = tensors.scaleBlockScales = tf.tensor2d(dq.blockScales, [nGroups, 1]);
        const mean = tensors.scaleMean = tf.scalar(dq.mean);
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
      decode = () => {
        const v = tf.gather(tf.tensor1d(table), tf.cast(unpackN(packed, 4, n), "int32"));
        const blocks = tf.reshape(tf.pad(v, [[0, nBlocks * bs - n]]), [nBlocks, bs]);
        const w = tf.mul(blocks, tf.reshape(scales(), [nBlocks, 1]));
        return tf.slice(tf.reshape(w, [-1]), 0, n);
      };
    }
  }
  const storedBytes = Object.values(tensors).reduce((acc, t) => acc + 4 * t.size, 0);
  let disposed = false;
  return {
    scheme: cfg.scheme,
    config: cfg,
    shape: [rows, cols],
    storedBytes,
    bitsPerParam: (storedBytes * 8) / n,
    tensors,
    dequantize: () => {
      if (disposed) throw new Error("dequantize() on a disposed QuantizedWeight; quantize the weight again");
      return tf.tidy(() => tf.reshape(decode(), [rows, cols]) as tf.Tensor2D);
    },
    dispose: () => {
      disposed = true;
      for (const t of Object.values(tensors)) t.dispose();
    },
  };
}

/** The first `count` unpacked fields as float32 (integer values). */
function unpackN(packed: tf.Tensor, bits: 4 | 8 | 16, count: number): tf.Tensor1D {
  return tf.slice(unpackFieldsTf(packed as tf.Tensor1D, bits), 0, count);
}

/**
 * 16-bit patterns h (float32 integers) -> values: hi = floor(h / 2^mant) holds sign and exponent,
 * m = h - hi · 2^mant, sign = floor(hi / 2^exp), e = hi - sign · 2^exp; value =
 * (1 - 2 · sign) · (A[e] + m · B[e]) with the tables of `halfDecodeTables` (all steps exact).
 */
function decodeHalf(h: tf.Tensor1D, kind: "fp16" | "bf16"): tf.Tensor {
  const [manBits, expBits] = kind === "fp16" ? [10, 5] : [7, 8];
  const { a, b } = halfDecodeTables(kind);
  const hi = tf.floor(tf.mul(h, 2 ** -manBits));
  const m = tf.sub(h, tf.mul(hi, 2 ** manBits));
  const sign = tf.floor(tf.mul(hi, 2 ** -expBits));
  const e = tf.cast(tf.sub(hi, tf.mul(sign, 2 ** expBits)), "int32");
  const mag = tf.add(tf.gather(tf.tensor1d(a), e), tf.mul(m, tf.gather(tf.tensor1d(b), e)));
  return tf.mul(mag, tf.sub(1, tf.mul(sign, 2)));
}
