/**
 * float32 <-> IEEE binary16 (fp16) and bfloat16 bit patterns, round-to-nearest-even.
 *
 * - fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; normal values have relative rounding
 *   error <= 2^-11, largest finite 65504, subnormals down to 2^-24.
 * - bf16: the top 16 bits of a float32 (1, 8, 7); relative rounding error <= 2^-8.
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Largest finite fp16 value, (2 - 2^-10) * 2^15. */
export const FP16_MAX = 65504;

/**
 * fp16 bit pattern of a float32 value, rounded to nearest even. Values beyond {@link FP16_MAX}
 * (after rounding) become ±Infinity, as IEEE conversion does; callers reject them first.
 */
export function toFp16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal fp16: value = m * 2^-24 with m = round(|x| * 2^24); exact in float64.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to 0
    const m = roundHalfEven(Math.abs(f32[0]) * 2 ** 24);
    return sign | m; // m may reach 0x400 = smallest normal, which is the right pattern
  }
  // Normal: drop 13 mantissa bits with round-half-even; a carry may bump the exponent (correct).
  const rest = man & 0x1fff;
  let h = (e << 10) | (man >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h; // h = 0x7c00 after carry means overflow to infinity
}

/** float value of an fp16 bit pattern: (-1)^s · 2^(e-15) · (1 + m/1024), or m · 2^-24 when e = 0. */
export function fromFp16Bits(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** bf16 bit pattern of a float32 value: the top 16 bits after round-half-even on the low 16. */
export function toBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40; // keep NaN a NaN
  const rest = b & 0xffff;
  let h = b >>> 16;
  if (rest > 0x8000 || (rest === 0x8000 && (h & 1))) h++;
  return h & 0xffff;
}

/** float value of a bf16 bit pattern (exactly the float32 with these top bits and zero below). */
export function fromBf16Bits(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

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
