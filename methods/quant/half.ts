/**
 * float32 <-> IEEE binary16 (fp16) and bfloat16 bit patterns, round-to-nearest-even.
 *
 * - fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; normal values have relative rounding
 *   error <= 2^-11, largest finite 65504, subnormals down to 2^-24.
 * - bf16: the top 16 bits of a float32 (1, 8, 7); relative rounding error <= 2^-8.
 * @module
 */

/** Largest finite fp16 value, (2 - 2^-10) * 2^15. */
export const FP16_MAX = 65504;

// One implementation of the bit conversions: the safetensors module's (tested exhaustively there).
export {
  bf16BitsToF32 as fromBf16Bits,
  f16BitsToF32 as fromFp16Bits,
  f32ToBf16Bits as toBf16Bits,
  f32ToF16Bits as toFp16Bits,
} from "../../models/safetensors.ts";

/**
 * Decoding tables for the tfjs path: a 16-bit pattern with exponent field e and mantissa m decodes
 * to `(-1)^s · (A[e] + m · B[e])`, where for fp16 A[e] = 2^(e-15) (0 when e = 0) and
 * B[e] = 2^(e-25) (2^-24 when e = 0); for bf16 A[e] = 2^(e-127), B[e] = 2^(e-134)
 * (2^-133 when e = 0). Every product and sum is exact in float32, so the tfjs result equals
 * {@link fromFp16Bits} / {@link fromBf16Bits} bit for bit. Infinity/NaN exponents are never
 * stored (quantize rejects non-finite weights).
 */
export function halfDecodeTables(kind: "fp16" | "bf16"): { a: Float32Array; b: Float32Array } {
  const [nExp, bias, manBits] = kind === "fp16" ? [32, 15, 10] : [256, 127, 7];
  const a = new Float32Array(nExp);
  const b = new Float32Array(nExp);
  for (let e = 0; e < nExp; e++) {
    a[e] = e === 0 ? 0 : 2 ** (e - bias);
    b[e] = 2 ** (Math.max(e, 1) - bias - manBits);
  }
  return { a, b };
}
