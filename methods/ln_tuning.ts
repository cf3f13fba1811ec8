/**
 * LN tuning (Zhao et al. 2023, "Tuning LayerNorm in Attention: Towards Efficient Multi-Modal LLM
 * Finetuning", arXiv 2312.11420; Hugging Face PEFT `LNTuningConfig`).
 *
 * Only the normalisation layers' parameters train. Llama uses RMSNorm, which has a gain and no
 * bias, so the trainable tensors are the gains: `layers.{i}.attn_norm.weight` (HF
 * `input_layernorm`), `layers.{i}.mlp_norm.weight` (`post_attention_layernorm`), the final
 * `norm.weight`, and the per-head q/k RMSNorm gains `layers.{i}.attn.{q,k}_norm.weight` where the
 * model has them (Qwen3). This is PEFT's default for Llama (every norm layer of the model); the
 * paper's core finding is that the norms inside each block suffice.
 *
 * Formula: RMSNorm(x) = g ⊙ x / rms(x) with g trained in place (the parameters' `trainable` flag is
 * set while the method is applied; `dispose` restores the flags, the trained values stay, as with
 * `full`). Initialisation: the pretrained gains, so the model is unchanged at init.
 * Trainable parameters: (2 L + 1) dim, plus 2 L headDim with q/k norms.
 * Mergeable trivially: the gains are the model's own parameters, nothing to fold.
 * No options.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import { inPlaceMethod } from "./common.ts";

const lnTuningSchema = z.object({}).strict();

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
  // Two RMSNorm gains per block and the final one, plus the q/k norms' headDim gains (Qwen3).
  contract: {
    testOptions: {},
    identityAtInit: true,
    parameterCount: (m) => (2 * m.nLayers + 1) * m.dim + (m.qkNorm ? 2 * m.nLayers * m.headDim : 0),
  },
  apply: (model) => inPlaceMethod(new Map(normGainNames(model.params).map((n) => [n, model.param(n)]))),
};
