/**
 * bitsandbytes' published 4-bit code values, written out independently of `codes.ts` so tests can
 * compare the implementation against them (sources: csrc/kernels.cu `nf4_dequantization_lut`,
 * functional.py `get_4bit_type("nf4")`; QLoRA appendix E).
 * @module
 */

/** The 16 NF4 values in bitsandbytes' code order. */
export const NF4_BNB_VALUES: readonly number[] = [
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
];
