/**
 * Quantization config for frozen backbone weights and its validation.
 *
 * Schemes (weights are [out, in] float32 matrices; compute is always fp32 after dequantization):
 * - `none`: fp32 as is (32 bits/param).
 * - `fp16`, `bf16`: stored as 16-bit patterns (16 bits/param).
 * - `int8`: row-wise absmax, codes round(127 · x / absmax_row) (8 + 32/in bits/param).
 * - `llm-int8`: int8 row-wise with fp32 outlier input columns (LLM.int8(), weight side only).
 * - `int4`, `nf4`, `fp4`: blockwise absmax 4-bit codes over the flattened weight
 *   (4 + 32/blockSize bits/param; with double quantization 4 + 8/blockSize + 32/(256·blockSize)).
 * @module
 */

/** Scheme names. */
export const QUANT_SCHEMES = ["none", "fp16", "bf16", "int8", "llm-int8", "int4", "nf4", "fp4"] as const;
/** A scheme name. */
export type QuantScheme = typeof QUANT_SCHEMES[number];
/** Schemes with 4-bit blockwise codes (the only ones taking blockSize / doubleQuant). */
export const BLOCK_SCHEMES: readonly QuantScheme[] = ["int4", "nf4", "fp4"];

/** What the user asks for. */
export interface QuantConfig {
  /** Storage scheme. */
  scheme: QuantScheme;
  /** Elements per absmax block (4-bit schemes; power of two in [16, 4096]; default 64, as QLoRA). */
  blockSize?: number;
  /** Quantize the per-block scales to 8 bits (QLoRA double quantization; 4-bit schemes only). */
  doubleQuant?: boolean;
  /** LLM.int8() outlier threshold on max |w| of an input column (llm-int8 only; default 6.0). */
  outlierThreshold?: number;
}

/** A validated config with every field filled in (fields that do not apply are their defaults). */
export interface ResolvedQuantConfig {
  /** Storage scheme. */
  scheme: QuantScheme;
  /** Elements per block (4-bit schemes). */
  blockSize: number;
  /** Double quantization on (4-bit schemes). */
  doubleQuant: boolean;
  /** Outlier-column threshold (llm-int8). */
  outlierThreshold: number;
}

/** Default block size, QLoRA's (Dettmers et al. 2023, section 3). */
export const DEFAULT_BLOCK_SIZE = 64;
/** Second-level block size of double quantization (QLoRA: 256). */
export const DQ_BLOCK_SIZE = 256;
/** LLM.int8()'s outlier threshold alpha = 6.0 (Dettmers et al. 2022, section 3.2). */
export const DEFAULT_OUTLIER_THRESHOLD = 6.0;

const KEYS = new Set(["scheme", "blockSize", "doubleQuant", "outlierThreshold"]);

/** Check a config (e.g. parsed JSON) and fill defaults; throws one clear line on bad input. */
export function validateQuantConfig(config: unknown): ResolvedQuantConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`quant config must be an object like {"scheme":"nf4"}, got ${JSON.stringify(config)}`);
  }
  const c = { ...config } as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!KEYS.has(k)) throw new Error(`unknown quant config key '${k}'; allowed: ${[...KEYS].join(", ")}`);
  }
  const scheme = c.scheme as QuantScheme;
  if (!QUANT_SCHEMES.includes(scheme)) {
    throw new Error(
      `unknown quant scheme ${JSON.stringify(c.scheme)}; use one of ${QUANT_SCHEMES.join(", ")}`,
    );
  }
  const isBlock = BLOCK_SCHEMES.includes(scheme);
  // A resolved config carries every field with its default; validating it again must succeed.
  if (!isBlock && c.blockSize === DEFAULT_BLOCK_SIZE) delete c.blockSize;
  if (scheme !== "llm-int8" && c.outlierThreshold === DEFAULT_OUTLIER_THRESHOLD) delete c.outlierThreshold;
  if (c.blockSize !== undefined) {
    if (!isBlock) {
      throw new Error(
        `blockSize applies only to ${BLOCK_SCHEMES.join("/")}; remove it for scheme '${scheme}'`,
      );
    }
    const b = c.blockSize;
    if (typeof b !== "number" || !Number.isInteger(b) || b < 16 || b > 4096 || (b & (b - 1)) !== 0) {
      throw new Error(`blockSize must be a power of two in [16, 4096], got ${JSON.stringify(b)}`);
    }
  }
  if (c.doubleQuant !== undefined) {
    if (typeof c.doubleQuant !== "boolean") {
      throw new Error(`doubleQuant must be true or false, got ${JSON.stringify(c.doubleQuant)}`);
    }
    if (c.doubleQuant && !isBlock) {
      throw new Error(
        `doubleQuant applies only to 4-bit schemes (${
          BLOCK_SCHEMES.join("/")
        }); drop it for scheme '${scheme}'`,
      );
    }
  }
  if (c.outlierThreshold !== undefined) {
    if (scheme !== "llm-int8") {
      throw new Error(`outlierThreshold applies only to llm-int8; remove it for scheme '${scheme}'`);
    }
    const t = c.outlierThreshold;
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
      throw new Error(`outlierThreshold must be a finite number > 0, got ${JSON.stringify(t)}`);
    }
  }
  return {
    scheme,
    blockSize: (c.blockSize as number | undefined) ?? DEFAULT_BLOCK_SIZE,
    doubleQuant: (c.doubleQuant as boolean | undefined) ?? false,
    outlierThreshold: (c.outlierThreshold as number | undefined) ?? DEFAULT_OUTLIER_THRESHOLD,
  };
}
