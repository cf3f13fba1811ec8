/**
 * Pure-TypeScript quantization: weight -> codes + constants ({@link quantizeCodes}) and
 * codes -> float32 weight ({@link dequantizeArray}), dispatched through the scheme list
 * (`schemes.ts`); each scheme module documents its formulas. The tfjs path in `quantize.ts` packs
 * these codes and decodes them with tensor ops to the identical float32 values.
 * @module
 */
import { FP4_CODE, INT4_CODE, NF4_CODE } from "./codes.ts";
import { type QuantConfig, type ResolvedQuantConfig, validateQuantConfig } from "./config.ts";
import { schemeModule } from "./schemes.ts";
import type { Calibration, QuantCodes } from "./schemes/types.ts";

export { decodeScales, doubleQuantize } from "./schemes/absmax4.ts";
export type { Calibration, DoubleQuantState, QuantCodes } from "./schemes/types.ts";

const TABLES: Readonly<Record<"int4" | "nf4" | "fp4", Float32Array>> = {
  int4: INT4_CODE,
  nf4: NF4_CODE,
  fp4: FP4_CODE,
};

/** The 16-entry decode table of a 4-bit absmax scheme. */
export function tableFor(scheme: "int4" | "nf4" | "fp4"): Float32Array {
  const t = TABLES[scheme];
  if (!t) throw new Error(`tableFor: '${scheme}' has no 4-bit code table; use int4, nf4 or fp4`);
  return t;
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

/**
 * Quantize a weight to codes and constants. Schemes that need calibration (GPTQ) take the layer's
 * input rows; the others refuse them (a caller passing inputs to nf4 has mixed something up).
 */
export function quantizeCodes(
  weight: Float32Array,
  shape: [number, number],
  config: QuantConfig | ResolvedQuantConfig,
  calibration: Calibration | null = null,
): QuantCodes {
  const cfg = validateQuantConfig(config);
  checkWeight(weight, shape);
  const mod = schemeModule(cfg.scheme);
  if (mod.needsCalibration && !calibration) {
    throw new Error(
      `quant scheme '${cfg.scheme}' needs calibration inputs (the layer's input rows); pass them or use --quant hqq4`,
    );
  }
  return mod.quantize(weight, shape, cfg, mod.needsCalibration ? calibration : null);
}

/** Decode codes back to a row-major float32 [out, in] weight (the reference for `dequantize()`). */
export function dequantizeArray(q: QuantCodes): Float32Array {
  return schemeModule(q.config.scheme).dequantizeRows(q, 0, q.shape[0]);
}

/** Decode the rows [row0, row1) only (a tile, for kernels that dequantize piecewise). */
export function dequantizeRows(q: QuantCodes, row0: number, row1: number): Float32Array {
  if (
    !(Number.isInteger(row0) && Number.isInteger(row1) && 0 <= row0 && row0 <= row1 && row1 <= q.shape[0])
  ) {
    throw new Error(`dequantizeRows: rows [${row0}, ${row1}) are outside [0, ${q.shape[0]})`);
  }
  return schemeModule(q.config.scheme).dequantizeRows(q, row0, row1);
}

/** Relative Frobenius error ||W - Ŵ||_F / ||W||_F of a dequantized weight (0 for a zero weight). */
export function relativeError(weight: Float32Array, dequantized: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < weight.length; i++) {
    num += (weight[i] - dequantized[i]) ** 2;
    den += weight[i] ** 2;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}
