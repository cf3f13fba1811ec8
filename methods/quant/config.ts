/**
 * Quantization config for frozen backbone weights and its validation.
 *
 * The schemes and what each stores are in `schemes.ts` and `schemes/*.ts` (each module's doc gives
 * its formulas and stored bits per parameter). A config is flat: `scheme` plus the options that
 * scheme accepts (its `options` list); every option is described once here in {@link QUANT_OPTIONS}.
 * Weights are [out, in] float32 matrices; compute is fp32 after dequantization (llm-int8 computes
 * its own mixed int8/fp16 product).
 * @module
 */
import { type QuantScheme, schemeModule, SCHEMES } from "./schemes.ts";
import {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CALIBRATION_ITEMS,
  DEFAULT_GPTQ_DAMPING,
  DEFAULT_OUTLIER_THRESHOLD,
  type QuantOptionKey,
  type ResolvedQuantConfig,
} from "./schemes/types.ts";

export {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_GPTQ_DAMPING,
  DEFAULT_OUTLIER_THRESHOLD,
  DQ_BLOCK_SIZE,
  type QuantOptionKey,
  type ResolvedQuantConfig,
} from "./schemes/types.ts";
export type { QuantScheme } from "./schemes.ts";

/** Scheme names, from the registry. */
export const QUANT_SCHEMES: readonly QuantScheme[] = SCHEMES.map((s) => s.name);
/** Schemes with 4-bit absmax blocks (the ones taking doubleQuant), from the registry. */
export const BLOCK_SCHEMES: readonly QuantScheme[] = SCHEMES.filter((s) => s.options.includes("doubleQuant"))
  .map((
    s,
  ) => s.name);

/** What the user asks for. */
export interface QuantConfig {
  /** Storage scheme. */
  scheme: QuantScheme;
  /** Elements per block / group (block and group schemes; power of two in [16, 4096]). */
  blockSize?: number;
  /** Quantize the per-block scales to 8 bits (QLoRA double quantization; 4-bit absmax schemes). */
  doubleQuant?: boolean;
  /** LLM.int8() outlier threshold on max |x| of an input feature column (llm-int8; default 6.0). */
  outlierThreshold?: number;
  /** GPTQ: process columns by decreasing Hessian diagonal (default false). */
  actOrder?: boolean;
  /** GPTQ: Hessian damping as a fraction of its mean diagonal (default 0.01). */
  damping?: number;
  /** GPTQ: training items (a seeded sample) recorded for calibration (default 32). */
  calibrationItems?: number;
}

/** One option: its global default, help line and check (returns an error message or null). */
export interface QuantOptionSpec {
  /** Default (a scheme may override it, see `defaults`). */
  default: number | boolean;
  /** Help line. */
  help: string;
  /** Error message for a bad value, or null. */
  check(v: unknown): string | null;
}

/** Every option a scheme may accept, described once. */
export const QUANT_OPTIONS: Readonly<Record<QuantOptionKey, QuantOptionSpec>> = {
  blockSize: {
    default: DEFAULT_BLOCK_SIZE,
    help: "elements per absmax block (4-bit) or input columns per group (hqq, gptq)",
    check: (b) =>
      typeof b !== "number" || !Number.isInteger(b) || b < 16 || b > 4096 || (b & (b - 1)) !== 0
        ? `blockSize must be a power of two in [16, 4096], got ${JSON.stringify(b)}`
        : null,
  },
  doubleQuant: {
    default: false,
    help: "quantize the block constants to 8 bits in blocks of 256 (QLoRA)",
    check: (v) =>
      typeof v !== "boolean" ? `doubleQuant must be true or false, got ${JSON.stringify(v)}` : null,
  },
  outlierThreshold: {
    default: DEFAULT_OUTLIER_THRESHOLD,
    help: "input feature columns with some |x| >= this go through the fp16 product",
    check: (t) =>
      typeof t !== "number" || !Number.isFinite(t) || t <= 0
        ? `outlierThreshold must be a finite number > 0, got ${JSON.stringify(t)}`
        : null,
  },
  actOrder: {
    default: false,
    help: "quantize columns by decreasing Hessian diagonal (gptq's act-order)",
    check: (v) => typeof v !== "boolean" ? `actOrder must be true or false, got ${JSON.stringify(v)}` : null,
  },
  damping: {
    default: DEFAULT_GPTQ_DAMPING,
    help: "Hessian damping as a fraction of its mean diagonal (gptq percdamp)",
    check: (v) =>
      typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > 1
        ? `damping must be a number in (0, 1], got ${JSON.stringify(v)}`
        : null,
  },
  calibrationItems: {
    default: DEFAULT_CALIBRATION_ITEMS,
    help: "training items (a seeded sample) whose layer inputs calibrate gptq",
    check: (v) =>
      typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 4096
        ? `calibrationItems must be an integer in [1, 4096], got ${JSON.stringify(v)}`
        : null,
  },
};

const OPTION_KEYS = Object.keys(QUANT_OPTIONS) as QuantOptionKey[];
const KEYS = new Set<string>(["scheme", ...OPTION_KEYS]);

/** The schemes accepting an option, for error messages. */
function schemesTaking(key: QuantOptionKey): string {
  return SCHEMES.filter((s) => s.options.includes(key)).map((s) => s.name).join("/");
}

/** Check a config (e.g. parsed JSON) and fill defaults; throws one clear line on bad input. */
export function validateQuantConfig(config: unknown): ResolvedQuantConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`quant config must be an object like {"scheme":"nf4"}, got ${JSON.stringify(config)}`);
  }
  const c = { ...config } as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!KEYS.has(k)) throw new Error(`unknown quant config key '${k}'; allowed: ${[...KEYS].join(", ")}`);
  }
  const mod = schemeModule(c.scheme as string);
  const resolved: Record<string, unknown> = { scheme: mod.name };
  for (const key of OPTION_KEYS) {
    const spec = QUANT_OPTIONS[key];
    const v = c[key];
    if (!mod.options.includes(key)) {
      // A resolved config carries every field with its default; validating it again must succeed.
      if (v !== undefined && v !== spec.default) {
        throw new Error(
          key === "doubleQuant"
            ? `doubleQuant applies only to 4-bit schemes (${
              schemesTaking(key)
            }); drop it for scheme '${mod.name}'`
            : `${key} applies only to ${schemesTaking(key)}; remove it for scheme '${mod.name}'`,
        );
      }
      resolved[key] = spec.default;
      continue;
    }
    if (v !== undefined) {
      const problem = spec.check(v);
      if (problem) throw new Error(problem);
    }
    resolved[key] = v ?? mod.defaults?.[key as "blockSize"] ?? spec.default;
  }
  return resolved as unknown as ResolvedQuantConfig;
}

/**
 * Parse `--quant-opt KEY=VALUE` pairs into config fields (numbers and true/false; the scheme then
 * validates them); throws one line naming the bad pair and the flag.
 */
export function parseQuantOptions(pairs: readonly string[]): Partial<QuantConfig> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z]+)=(.+)$/.exec(pair);
    if (!m) {
      throw new Error(`--quant-opt ${JSON.stringify(pair)}: use KEY=VALUE, e.g. --quant-opt actOrder=true`);
    }
    const [, key, raw] = m;
    if (!OPTION_KEYS.includes(key as QuantOptionKey)) {
      throw new Error(`--quant-opt ${key}: unknown quant option; allowed: ${OPTION_KEYS.join(", ")}`);
    }
    const value = raw === "true" ? true : raw === "false" ? false : Number(raw);
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new Error(`--quant-opt ${key}=${raw}: expected a number or true/false`);
    }
    out[key] = value;
  }
  return out as Partial<QuantConfig>;
}
