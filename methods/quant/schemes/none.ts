/**
 * `none`: the fp32 weight as is (32 bits/param), stored as one float32 tensor.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { emptyCodes } from "./common.ts";
import type { QuantSchemeModule } from "./types.ts";

/** fp32, unquantized. */
export const none: QuantSchemeModule<"none"> = {
  name: "none",
  summary: "fp32 as is (32 bits/param)",
  options: [],
  needsCalibration: false,
  quantize: (weight, shape, cfg) => ({ ...emptyCodes(cfg, shape), codes: weight.slice() }),
  dequantizeRows: (q, row0, row1) =>
    Float32Array.from(q.codes.subarray(row0 * q.shape[1], row1 * q.shape[1])),
  layout: (shape) => [{ name: "values", dtype: "float32", length: shape[0] * shape[1] }],
  pack: (q) => {
    const values = tf.tensor2d(q.codes as Float32Array, q.shape);
    return { tensors: { values }, decode: () => tf.clone(values) };
  },
  // Never a QuantizedLinear in a run (`--quant none` leaves the base as it is).
  nativeDecode: null,
};
