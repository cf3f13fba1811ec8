/**
 * `int4`: blockwise symmetric absmax over the flattened weight, nibble k decodes to (k - 8) · s_b
 * with s_b = absmax_b / 7 (codes -7..7; 4 + 32/blockSize bits/param).
 * @module
 */
import { INT4_CODE } from "../codes.ts";
import { absmax4Scheme, INT4_KIND } from "./absmax4.ts";
import type { QuantSchemeModule } from "./types.ts";

/** Blockwise symmetric int4. */
export const int4: QuantSchemeModule<"int4"> = absmax4Scheme(
  "int4",
  "blockwise symmetric absmax int4 over the flattened weight (4 + 32/blockSize bits/param)",
  INT4_KIND(INT4_CODE),
);
