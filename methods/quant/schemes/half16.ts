/**
 * The 16-bit storage formats `fp16` and `bf16` (compute stays fp32): each weight is stored as its
 * round-to-nearest-even 16-bit pattern, two per int32 word (16 bits/param).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { FP16_MAX, fromBf16Bits, fromFp16Bits, halfDecodeTables, toBf16Bits, toFp16Bits } from "../half.ts";
import { packFields } from "../pack.ts";
import { emptyCodes, packedWords, unpackN } from "./common.ts";
import type { QuantSchemeModule } from "./types.ts";

/** A 16-bit storage scheme; fp16 refuses weights beyond its range (naming bf16 instead). */
function half16<N extends "fp16" | "bf16">(name: N, summary: string): QuantSchemeModule<N> {
  const encode = name === "fp16" ? toFp16Bits : toBf16Bits;
  const decodeOne = name === "fp16" ? fromFp16Bits : fromBf16Bits;
  return {
    name,
    summary,
    options: [],
    needsCalibration: false,
    quantize: (weight, shape, cfg) => {
      const codes = new Uint16Array(weight.length);
      for (let i = 0; i < weight.length; i++) {
        codes[i] = encode(weight[i]);
        if (name === "fp16" && (codes[i] & 0x7c00) === 0x7c00) {
          throw new Error(
            `weight value ${i} = ${weight[i]} overflows fp16 (max ${FP16_MAX}); use scheme 'bf16'`,
          );
        }
      }
      return { ...emptyCodes(cfg, shape), codes };
    },
    dequantizeRows: (q, row0, row1) => {
      const cols = q.shape[1];
      const out = new Float32Array((row1 - row0) * cols);
      for (let i = 0; i < out.length; i++) out[i] = decodeOne(q.codes[row0 * cols + i]);
      return out;
    },
    layout: (shape) => [{ name: "packed", dtype: "int32", length: packedWords(shape[0] * shape[1], 16) }],
    pack: (q) => {
      const packed = tf.tensor1d(packFields(q.codes, 16), "int32");
      const n = q.shape[0] * q.shape[1];
      return { tensors: { packed }, decode: () => decodeHalf(unpackN(packed, 16, n), name) };
    },
    nativeDecode: { kind: "half16", format: name },
  };
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

/** IEEE binary16 storage. */
export const fp16: QuantSchemeModule<"fp16"> = half16(
  "fp16",
  "IEEE fp16 storage, compute fp32 (16 bits/param; weights beyond 65504 are refused)",
);
/** bfloat16 storage. */
export const bf16: QuantSchemeModule<"bf16"> = half16(
  "bf16",
  "bfloat16 storage, compute fp32 (16 bits/param)",
);
