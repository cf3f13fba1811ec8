/**
 * Quantization of frozen backbone weights (QLoRA & co): one contract for every scheme.
 *
 * `quantize(weight, [out, in], { scheme: "nf4", doubleQuant: true })` returns a
 * {@link QuantizedWeight} whose `dequantize()` rebuilds the float32 weight with tfjs ops on the
 * fly; `quantizeCodes` / `dequantizeArray` are the pure-TypeScript reference; `loftqInit` builds
 * LoftQ's (Q, A, B) initialisation.
 * @module
 */
export * from "./config.ts";
export { DYNAMIC_CODE_8BIT, FP4_CODE, INT4_CODE, maxHalfGap, NF4_CODE } from "./codes.ts";
export { fromCodes, quantize, type QuantizedWeight } from "./quantize.ts";
export {
  decodeScales,
  dequantizeArray,
  doubleQuantize,
  type DoubleQuantState,
  type QuantCodes,
  quantizeCodes,
} from "./reference.ts";
export { loftqInit, type LoftQOptions, type LoftQResult } from "./loftq.ts";
