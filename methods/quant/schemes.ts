/**
 * The list of quantization schemes: the only place that names them. `--quant` help, the config
 * validation, the reference quantizer/decoder, the tfjs packer and the README table all come from
 * (or are checked against) this list; adding a scheme is adding a module under `schemes/` and one
 * entry here.
 * @module
 */
import { fp4 } from "./schemes/fp4.ts";
import { gptq3, gptq4 } from "./schemes/gptq.ts";
import { bf16, fp16 } from "./schemes/half16.ts";
import { hqq2, hqq3, hqq4 } from "./schemes/hqq.ts";
import { int4 } from "./schemes/int4.ts";
import { int8 } from "./schemes/int8.ts";
import { llmInt8 } from "./schemes/llm_int8.ts";
import { nf4 } from "./schemes/nf4.ts";
import { none } from "./schemes/none.ts";
import type { QuantSchemeModule } from "./schemes/types.ts";

/** Every scheme, in `--quant` help order. */
export const SCHEMES = [
  none,
  fp16,
  bf16,
  int8,
  llmInt8,
  int4,
  nf4,
  fp4,
  hqq4,
  hqq3,
  hqq2,
  gptq4,
  gptq3,
] as const;

/** A scheme name. */
export type QuantScheme = typeof SCHEMES[number]["name"];

const BY_NAME: ReadonlyMap<string, QuantSchemeModule> = new Map(SCHEMES.map((s) => [s.name, s]));

/** The module of a scheme; throws one line listing the schemes for an unknown name. */
export function schemeModule(name: string): QuantSchemeModule {
  const s = BY_NAME.get(name);
  if (!s) {
    throw new Error(
      `unknown quant scheme ${JSON.stringify(name)}; use one of ${SCHEMES.map((x) => x.name).join(", ")}`,
    );
  }
  return s;
}

/** `--quant` help line: every scheme name. */
export function quantHelp(): string {
  return `frozen-base quantization: ${SCHEMES.map((s) => s.name).join("|")} (README: Quantization)`;
}

/** The README's scheme table (Markdown rows, header included), generated from the list. */
export function quantReadmeTable(): string {
  const rows = SCHEMES.map((s) => {
    const opts = s.options.length > 0 ? s.options.join(", ") : "";
    return `| \`${s.name}\` | ${s.needsCalibration ? "yes" : "no"} | ${opts} | ${s.summary} |`;
  });
  return ["| scheme | calibration | options | what |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
