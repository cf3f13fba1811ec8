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

/** Fill defaults and check the shapes agree; throws a one-line error naming the bad field. */
export function validateConfig(
  c: Partial<LlamaConfig> & Pick<LlamaConfig, "dim" | "nLayers" | "nHeads">,
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
    tiedEmbeddings: c.tiedEmbeddings ?? false,
    qkNorm: c.qkNorm ?? false,
    qkvBias: c.qkvBias ?? false,
    bosId: c.bosId ?? null,
    eosId: c.eosId ?? null,
    padId: c.padId ?? null,
  };
  const positive = [
    "dim",
    "hiddenDim",
    "nLayers",
    "nHeads",
    "nKvHeads",
    "headDim",
    "vocabSize",
    "maxSeqLen",
  ] as const;
  for (const key of positive) {
    const v = cfg[key];
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`model config: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new Error(`model config: nHeads (${cfg.nHeads}) must be a multiple of nKvHeads (${cfg.nKvHeads})`);
  }
  if (cfg.headDim % 2 !== 0) {
    throw new Error(`model config: headDim must be even for RoPE, got ${cfg.headDim}`);
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
