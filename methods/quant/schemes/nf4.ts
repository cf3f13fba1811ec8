/**
 * `nf4`: bitsandbytes' NormalFloat-4 code (QLoRA, Dettmers et al. 2023) per absmax block:
 * w = NF4[k] · absmax_b, k the nearest code of x · fround(1 / absmax_b) (4 + 32/blockSize
 * bits/param; double quantization optional).
 * @module
 */
import { NF4_CODE } from "../codes.ts";
import { absmax4Scheme, tableKind } from "./absmax4.ts";
import type { QuantSchemeModule } from "./types.ts";

/** QLoRA's NF4. */
export const nf4: QuantSchemeModule<"nf4"> = absmax4Scheme(
  "nf4",
  "bitsandbytes NormalFloat-4 code per absmax block (QLoRA; 4 + 32/blockSize bits/param)",
  tableKind(NF4_CODE, false, 7),
);
