/**
 * LN tuning (Zhao et al. 2023, "Tuning LayerNorm in Attention: Towards Efficient Multi-Modal LLM
 * Finetuning", arXiv 2312.11420; Hugging Face PEFT `LNTuningConfig`).
 *
 * Only normalisation layers' parameters train. Llama uses RMSNorm, which has a gain and no bias, so
 * the trainable tensors are gains. Which ones (`norms`):
 * - `peft` (default): PEFT's default target modules for the architecture
 *   (`TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING`, utils/constants.py): for `llama`
 *   `input_layernorm`, `post_attention_layernorm` and the final `norm` (our `layers.{i}.attn_norm`,
 *   `layers.{i}.mlp_norm`, `norm`); for `qwen2` and `qwen3` only `post_attention_layernorm`
 *   (`layers.{i}.mlp_norm`): neither the input norms, the final norm nor Qwen3's q/k norms.
 * - `all`: every norm gain of the model, the q/k norms included (this method's behaviour before it
 *   followed PEFT's mapping; the paper's finding is that the norms inside each block suffice).
 *
 * Formula: RMSNorm(x) = g ⊙ x / rms(x) with g trained in place (the parameters' `trainable` flag is
 * set while the method is applied; `dispose` restores the flags, the trained values stay, as with
 * `full`). Initialisation: the pretrained gains, so the model is unchanged at init.
 * Trainable parameters: `peft` (2 L + 1) dim on Llama, L dim on Qwen2/Qwen3; `all` (2 L + 1) dim
 * plus 2 L headDim with q/k norms.
 * Mergeable trivially: the gains are the model's own parameters, nothing to fold.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import { inPlaceMethod } from "./common.ts";

const lnTuningSchema = z.object({
  /** Which norm gains train: PEFT's default modules for the architecture, or every norm. */
  norms: z.enum(["peft", "all"]).default("peft"),
}).strict();

/** Architectures whose PEFT default is `post_attention_layernorm` alone (PEFT's qwen2, qwen3). */
const POST_ATTENTION_ONLY = new Set(["Qwen2ForCausalLM", "Qwen3ForCausalLM"]);

/** The gains PEFT's default LN-tuning targets select on a model of this architecture. */
export function peftNormGainNames(params: Map<string, tf.Variable>, architecture: string): string[] {
  const re = POST_ATTENTION_ONLY.has(architecture)
    ? /^layers\.\d+\.mlp_norm\.weight$/
    : /^(layers\.\d+\.(attn_norm|mlp_norm)|norm)\.weight$/;
  return [...params.keys()].filter((n) => re.test(n));
}

/** Names of the model's norm gains, in parameter order. */
export function normGainNames(params: Map<string, tf.Variable>): string[] {
  return [...params.keys()].filter((n) => /(^|\.)(attn_norm|mlp_norm|q_norm|k_norm|norm)\.weight$/.test(n));
}

/** LN tuning. */
export const lnTuning: MethodDefinition<z.infer<typeof lnTuningSchema>> = {
  name: "ln-tuning",
  description: "train only the RMSNorm gains (Zhao et al. 2023, LayerNorm tuning)",
  schema: lnTuningSchema,
  mergeable: true,
  // PEFT's mapping: two RMSNorm gains per block and the final one on Llama, the post-attention
  // gain alone on Qwen2/Qwen3; `all` adds the q/k norms' headDim gains.
  contract: {
    testOptions: {},
    identityAtInit: true,
    parameterCount: (m, c) =>
      c.norms === "all"
        ? (2 * m.nLayers + 1) * m.dim + (m.qkNorm ? 2 * m.nLayers * m.headDim : 0)
        : POST_ATTENTION_ONLY.has(m.architecture)
        ? m.nLayers * m.dim
        : (2 * m.nLayers + 1) * m.dim,
  },
  apply: (model, config) => {
    const names = config.norms === "all"
      ? normGainNames(model.params)
      : peftNormGainNames(model.params, model.config.architecture);
    return inPlaceMethod(new Map(names.map((n) => [n, model.param(n)])));
  },
};
