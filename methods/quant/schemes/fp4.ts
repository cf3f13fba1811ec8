/**
 * `fp4`: bitsandbytes' FP4 code (E2M1, bias 3) per absmax block: sign bit plus the nearest
 * magnitude code of |x| · fround(1 / absmax_b) (4 + 32/blockSize bits/param).
 * @module
 */
import { FP4_CODE } from "../codes.ts";
import { absmax4Scheme, tableKind } from "./absmax4.ts";
import type { QuantSchemeModule } from "./types.ts";

/** bitsandbytes' FP4. */
export const fp4: QuantSchemeModule<"fp4"> = absmax4Scheme(
  "fp4",
  "bitsandbytes FP4 (E2M1) code per absmax block (4 + 32/blockSize bits/param)",
  tableKind(FP4_CODE, true, 0),
);
