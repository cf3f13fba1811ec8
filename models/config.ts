/**
 * Architecture configuration of the Llama-family decoder (Llama, Qwen2, Qwen3 and llama2.c models).
 * @module
 */

/** How RoPE pairs the features of a head. */
export type RopeStyle =
  /** llama2.c / Meta's original: features (2i, 2i+1) form a rotation pair. */
  | "interleaved"
  /** Hugging Face's rotate_half: features (i, i + headDim/2) form a rotation pair. */
  | "half";

/**
 * RoPE frequency scaling, as Hugging Face's `rope_scaling` (transformers `modeling_rope_utils`):
 * `linear` divides every inverse frequency by `factor`; `llama3` (Llama 3.1/3.2) divides only the
 * low frequencies (wavelength above originalMaxPositionEmbeddings / lowFreqFactor) by `factor`,
 * keeps the high ones (wavelength below originalMaxPositionEmbeddings / highFreqFactor), and blends
 * linearly in 1/wavelength between them.
 */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Every shape and option the decoder needs. */
export interface LlamaConfig {
  /** Architecture name, e.g. `LlamaForCausalLM`, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`, `llama2.c`. */
  architecture: string;
  /** Model width. */
  dim: number;
  /** SwiGLU inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention when fewer than nHeads). */
  nKvHeads: number;
  /** Per-head width; dim / nHeads unless the checkpoint says otherwise (Qwen3). */
  headDim: number;
  vocabSize: number;
  /** Longest sequence the model was trained for. */
  maxSeqLen: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  ropeStyle: RopeStyle;
  /** RoPE frequency scaling (null: none). */
  ropeScaling: RopeScaling | null;
  /** Output head shares the embedding table. */
  tiedEmbeddings: boolean;
  /** Per-head RMSNorm on queries and keys (Qwen3). */
  qkNorm: boolean;
  /** Biases on the q, k, v projections (Qwen2). */
  qkvBias: boolean;
  /** Special token ids, where known. */
  bosId?: number | null;
  eosId?: number | null;
  padId?: number | null;
}

/** The size fields of a config, each a positive integer. */
const SIZE_FIELDS = [
  "dim",
  "hiddenDim",
  "nLayers",
  "nHeads",
  "nKvHeads",
  "headDim",
  "vocabSize",
  "maxSeqLen",
] as const;

/**
 * Upper bounds on the size fields: far above any real Llama-family model (the largest have about
 * 130 layers, 128 heads and a 256k vocabulary), and low enough that a mistyped config fails here,
 * before any table of parameters is allocated. Every size is at most 2^31 - 1, as tensor
 * dimensions and llama2.c headers are int32.
 */
export const CONFIG_LIMITS: Readonly<Record<(typeof SIZE_FIELDS)[number], number>> = {
  dim: 2 ** 31 - 1,
  hiddenDim: 2 ** 31 - 1,
  nLayers: 4096,
  nHeads: 65536,
  nKvHeads: 65536,
  headDim: 2 ** 31 - 1,
  vocabSize: 2 ** 31 - 1,
  maxSeqLen: 2 ** 31 - 1,
};

/**
 * Fill defaults and check the shapes agree; throws a one-line error naming the bad field.
 * `source` starts each error (e.g. the config file's path); `fieldNames` gives the names the
 * source uses for fields (e.g. `num_hidden_layers` for `nLayers`), so the error names what to fix.
 */
export function validateConfig(
  c: Partial<LlamaConfig> & Pick<LlamaConfig, "dim" | "nLayers" | "nHeads">,
  source = "model config",
  fieldNames: Partial<Record<keyof LlamaConfig, string>> = {},
): LlamaConfig {
  const cfg: LlamaConfig = {
    architecture: c.architecture ?? "LlamaForCausalLM",
    dim: c.dim,
    hiddenDim: c.hiddenDim ?? 4 * c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads ?? c.nHeads,
    headDim: c.headDim ?? c.dim / c.nHeads,
    vocabSize: c.vocabSize ?? 0,
    maxSeqLen: c.maxSeqLen ?? 2048,
    normEps: c.normEps ?? 1e-5,
    ropeTheta: c.ropeTheta ?? 10000,
    ropeStyle: c.ropeStyle ?? "half",
    ropeScaling: c.ropeScaling ?? null,
    tiedEmbeddings: c.tiedEmbeddings ?? false,
    qkNorm: c.qkNorm ?? false,
    qkvBias: c.qkvBias ?? false,
    bosId: c.bosId ?? null,
    eosId: c.eosId ?? null,
    padId: c.padId ?? null,
  };
  const name = (key: keyof LlamaConfig) => fieldNames[key] ?? key;
  for (const key of SIZE_FIELDS) {
    const v = cfg[key];
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`${source}: ${name(key)} must be a positive integer, got ${v}`);
    }
    if (v > CONFIG_LIMITS[key]) {
      throw new Error(
        `${source}: ${name(key)} is ${v}, above the limit of ${CONFIG_LIMITS[key]}; fix the config`,
      );
    }
  }
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new Error(
      `${source}: ${name("nHeads")} (${cfg.nHeads}) must be a multiple of ${
        name("nKvHeads")
      } (${cfg.nKvHeads})`,
    );
  }
  if (cfg.headDim % 2 !== 0) {
    throw new Error(`${source}: ${name("headDim")} must be even for RoPE, got ${cfg.headDim}`);
  }
  return cfg;
}

/** Number of parameters of a model with this config (embedding counted once when tied). */
export function countParameters(cfg: LlamaConfig): number {
  const q = cfg.dim * cfg.nHeads * cfg.headDim;
  const kv = 2 * cfg.dim * cfg.nKvHeads * cfg.headDim;
  const o = cfg.nHeads * cfg.headDim * cfg.dim;
  const mlp = 3 * cfg.dim * cfg.hiddenDim;
  const norms = 2 * cfg.dim + (cfg.qkNorm ? 2 * cfg.headDim : 0);
  const bias = cfg.qkvBias ? (cfg.nHeads + 2 * cfg.nKvHeads) * cfg.headDim : 0;
  const perLayer = q + kv + o + mlp + norms + bias;
  const embed = cfg.vocabSize * cfg.dim;
  return embed + cfg.nLayers * perLayer + cfg.dim + (cfg.tiedEmbeddings ? 0 : embed);
}
