/**
 * `int8`: row-wise absmax, codes round(127 · x / absmax_row) (half away from zero), decoded
 * w = c · s_row with s_row = absmax_row / 127 (8 + 32/in bits/param: one fp32 scale per output row).
 * Weight-only: the forward pass multiplies the dequantized weight in fp32.
 * @module
 */
import { packRowwiseInt8, rowwiseInt8, rowwiseInt8Layout, rowwiseInt8Rows } from "./common.ts";
import { emptyCodes } from "./common.ts";
import type { QuantSchemeModule } from "./types.ts";

/** Row-wise absmax int8, weight only. */
export const int8: QuantSchemeModule<"int8"> = {
  name: "int8",
  summary: "row-wise absmax int8, weight only (8 + 32/in bits/param)",
  options: [],
  needsCalibration: false,
  quantize: (weight, shape, cfg) => ({ ...emptyCodes(cfg, shape), ...rowwiseInt8(weight, shape) }),
  dequantizeRows: rowwiseInt8Rows,
  layout: rowwiseInt8Layout,
  pack: packRowwiseInt8,
  nativeDecode: { kind: "rowwise-int8" },
};
