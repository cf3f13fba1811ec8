/**
 * Code tables for the 4-bit and 8-bit quantizers, and nearest-code rounding.
 *
 * A code table maps a small integer code k to a float `table[k]` in [-1, 1]; a block of weights
 * with scale s is stored as codes and decoded as `w ≈ table[k] * s`.
 * @module
 */

/**
 * bitsandbytes' NormalFloat-4 (NF4) code, indexed by the 4-bit code (QLoRA, Dettmers et al. 2023).
 * Values are the float32 literals of bitsandbytes `csrc/kernels.cu` (`nf4_dequantization_lut`,
 * `dDequantizeNF4`) and `functional.py get_4bit_type("nf4")`: quantiles of N(0, 1) normalised to
 * [-1, 1], asymmetric so that 0 is exact; code 7 is 0, code 0 is -1, code 15 is +1.
 */
export const NF4_CODE: Float32Array = Float32Array.from([
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
]);

/**
 * bitsandbytes' FP4 code (E2M1 with bias 3, one subnormal), indexed by its bit pattern
 * `s e1 e0 m`: bit 3 is the sign; codes 0..7 are
 * `[0, 0.0625, 8, 12, 4, 6, 2, 3] / 12` (`functional.py get_4bit_type("fp4")` normalised by its
 * max 12), as the float32 literals of `kernels.cu dDequantizeFP4Tree`:
 * 0, 5.208333333e-3, 0.66666667, 1, 0.33333333, 0.5, 0.16666667, 0.25. Codes 8..15 are the
 * negatives (code 8 is -0).
 */
export const FP4_CODE: Float32Array = (() => {
  const mag = [0, 5.208333333e-3, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25];
  return Float32Array.from([...mag, ...mag.map((v) => -v)]);
})();

/**
 * Symmetric int4 code: nibble k decodes to the integer k - 8, so codes -7..7 are nibbles 1..15
 * (offset binary; nibble 0 = -8 is never produced). The block scale is absmax / 7.
 */
export const INT4_CODE: Float32Array = Float32Array.from({ length: 16 }, (_, k) => k - 8);

/**
 * bitsandbytes' signed dynamic 8-bit map (`functional.py create_dynamic_map(signed=True,
 * max_exponent_bits=7, total_bits=8)`, Dettmers 2016), the code QLoRA's double quantization uses
 * for the per-block constants. For i = 0..6 it holds ±10^(i-6) · m, where m runs over the 2^i
 * midpoints of `linspace(0.1, 1, 2^i + 1)`; plus 0 and 1; 256 values sorted ascending.
 * Computed here in float64 and rounded once to float32 (torch computes the midpoints in float32,
 * so individual entries may differ from bitsandbytes' by an ulp).
 */
export const DYNAMIC_CODE_8BIT: Float32Array = (() => {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const items = 2 ** i + 1;
    const bounds = Array.from({ length: items }, (_, j) => 0.1 + (0.9 * j) / (items - 1));
    for (let j = 0; j + 1 < items; j++) {
      const mean = (bounds[j] + bounds[j + 1]) / 2;
      data.push(10 ** (i - 6) * mean, -(10 ** (i - 6)) * mean);
    }
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
})();

/**
 * Index of the table entry nearest to x (ties go to the smaller value, as bitsandbytes' decision
 * trees do: they test `x > midpoint`). `sorted` holds the table's values ascending and `order`
 * the matching code for each; `mids[j] = (sorted[j] + sorted[j + 1]) / 2`.
 */
export interface SortedCode {
  /** Table values, ascending. */
  sorted: Float64Array;
  /** Code (index in the original table) of each sorted value. */
  order: Uint8Array;
  /** Midpoints between neighbours, length n - 1. */
  mids: Float64Array;
}

/** Prepare a code table for {@link nearestCode}; duplicate values keep their first code. */
export function sortCode(table: Float32Array): SortedCode {
  const idx = Array.from(table.keys()).sort((a, b) => table[a] - table[b] || a - b);
  const keep = idx.filter((k, j) => j === 0 || table[k] !== table[idx[j - 1]]);
  const sorted = Float64Array.from(keep, (k) => table[k]);
  const mids = new Float64Array(sorted.length - 1);
  for (let j = 0; j < mids.length; j++) mids[j] = (sorted[j] + sorted[j + 1]) / 2;
  return { sorted, order: Uint8Array.from(keep), mids };
}

/** The code whose value is nearest to x: binary search over the midpoints, O(log n). */
export function nearestCode(code: SortedCode, x: number): number {
  let lo = 0;
  let hi = code.mids.length; // answer j in [0, n-1]: the first j with x <= mids[j]
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x > code.mids[mid]) lo = mid + 1;
    else hi = mid;
  }
  return code.order[lo];
}

/**
 * Half the largest gap between adjacent values of a table: the worst-case rounding error of a
 * normalised value in [-1, 1], so a block's error is at most `scale * maxHalfGap(table)`.
 */
export function maxHalfGap(table: Float32Array): number {
  const s = sortCode(table).sorted;
  let gap = 0;
  for (let j = 1; j < s.length; j++) gap = Math.max(gap, s[j] - s[j - 1]);
  return gap / 2;
}
