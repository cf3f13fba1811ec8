/**
 * P-tuning (Liu et al., 2021, "GPT Understands, Too"), as Hugging Face PEFT's `p_tuning`
 * (`PromptEncoder`) computes it for a causal LM.
 *
 * Formula: p virtual-token embeddings (`virtualTokens`, PEFT `num_virtual_tokens`) are produced by a
 * prompt encoder from a trainable embedding E [p, dim] and prepended to every sequence's token
 * embeddings (`model.hooks.promptEmbeddings`, as prompt tuning; the prompt positions are dropped
 * from the outputs). The encoder is PEFT's default reparametrisation, `MLP`:
 *   P = W3 relu(W2 relu(W1 E^T + b1) + b2) + b3,
 * with W1 [h, dim], W2 [h, h], W3 [dim, h] (`encoderHidden` h, PEFT `encoder_hidden_size`): three
 * linear layers, exactly as PEFT builds `mlp_head` (it ignores `encoder_num_layers` for MLP). PEFT's
 * other encoder, the paper's bidirectional LSTM (`LSTM`), is not implemented here.
 *
 * Initialisation, all from ctx.rng: E ~ N(0, 1) (torch nn.Embedding); every linear layer as
 * torch nn.Linear: weight and bias U(-1/sqrt(fanIn), 1/sqrt(fanIn)). Not identity at init (the
 * prompt changes every real token's context). `encoder_dropout` is PEFT's 0.0 (no dropout).
 *
 * Defaults: PEFT leaves `num_virtual_tokens` and `encoder_hidden_size` unset (required); its
 * method-comparison "ptuning default" experiment uses 20 virtual tokens and encoder_hidden_size =
 * token_dim, so `virtualTokens` 20 and `encoderHidden` = the model's dim when not given.
 *
 * Trainable parameters: p dim + (h dim + h) + (h h + h) + (dim h + dim).
 * Not mergeable: the prompt is an input, not a weight.
 * PEFT export: as `get_prompt_embedding_to_save`, the encoder's output P [p, dim] under the bare
 * key `prompt_embeddings` (PEFT loads it as the embedding of an inference-mode encoder and uses it
 * directly, without the MLP), with `peft_type: P_TUNING`, `encoder_reparameterization_type: MLP`,
 * `encoder_hidden_size`, `num_virtual_tokens`, `token_dim` and the model's layer and head counts.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { AppliedMethod, MethodDefinition } from "./types.ts";
import type { LlamaConfig } from "../models/config.ts";
import type { Rng } from "../models/util/rng.ts";
import { ownedVariablesMethod, trainableVariable } from "./common.ts";
import { affine, setHook } from "./bottleneck.ts";

/** P-tuning options. */
export const pTuningSchema = z.object({
  /** Number p of virtual tokens (PEFT `num_virtual_tokens`). */
  virtualTokens: z.number().int().positive().default(20),
  /** Hidden width h of the MLP prompt encoder (PEFT `encoder_hidden_size`); absent: the model's dim. */
  encoderHidden: z.number().int().positive().optional(),
}).strict();

/** P-tuning options after defaults. */
export type PTuningConfig = z.infer<typeof pTuningSchema>;

/** The encoder's hidden width on a model with this config. */
export function encoderHidden(m: LlamaConfig, c: PTuningConfig): number {
  return c.encoderHidden ?? m.dim;
}

/** torch nn.Linear's default init for [out, in]: weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
function torchLinear(rng: Rng, out: number, inF: number): { w: Float32Array; b: Float32Array } {
  const bound = 1 / Math.sqrt(inF);
  return {
    w: rng.fork("weight").uniformArray(out * inF, -bound, bound),
    b: rng.fork("bias").uniformArray(out, -bound, bound),
  };
}

/** The applied method plus the encoder's current output. */
export interface AppliedPTuning extends AppliedMethod {
  /** The prompt P [p, dim] the encoder produces now (caller disposes). */
  prompt(): tf.Tensor2D;
}

/** P-tuning with PEFT's MLP prompt encoder. */
export const pTuning: MethodDefinition<PTuningConfig> = {
  name: "p-tuning",
  description:
    "virtual tokens from an MLP prompt encoder prepended to the input embeddings (Liu et al. 2021; PEFT)",
  schema: pTuningSchema,
  mergeable: false,
  contract: {
    testOptions: { virtualTokens: 4, encoderHidden: 8 },
    identityAtInit: false,
    // E [p, d], W1 [h, d] + b1, W2 [h, h] + b2, W3 [d, h] + b3.
    parameterCount: (m, c) => {
      const h = encoderHidden(m, c);
      return c.virtualTokens * m.dim + (h * m.dim + h) + (h * h + h) + (m.dim * h + m.dim);
    },
    peftTensors: (m, c) => new Map([["prompt_embeddings", [c.virtualTokens, m.dim]]]),
  },
  apply: (model, config, ctx): AppliedPTuning => {
    const { dim } = model.config;
    const p = config.virtualTokens;
    const h = encoderHidden(model.config, config);
    const rng = ctx.rng.fork("p-tuning");
    const vars = new Map<string, tf.Variable>([
      [
        "prompt_encoder.embedding.weight",
        trainableVariable(rng.fork("embedding").normalArray(p * dim, 1), [p, dim]),
      ],
    ]);
    for (const [i, out, inF] of [[0, h, dim], [2, h, h], [4, dim, h]]) {
      const { w, b } = torchLinear(rng.fork(`mlp_head.${i}`), out, inF);
      vars.set(`prompt_encoder.mlp_head.${i}.weight`, trainableVariable(w, [out, inF]));
      vars.set(`prompt_encoder.mlp_head.${i}.bias`, trainableVariable(b, [out]));
    }
    const v = (name: string) => vars.get(`prompt_encoder.${name}`)! as tf.Tensor2D;
    const layer = (x: tf.Tensor2D, i: number) =>
      affine(x, v(`mlp_head.${i}.weight`), v(`mlp_head.${i}.bias`));
    const encode = () => layer(tf.relu(layer(tf.relu(layer(v("embedding.weight"), 0)), 2)), 4);
    const restore = setHook(model, "promptEmbeddings", encode, "p-tuning");
    const prompt = () => tf.tidy(encode);
    const c = model.config;
    return {
      ...ownedVariablesMethod(vars, restore, {
        peftExport: () => {
          const out = prompt();
          const data = out.dataSync() as Float32Array;
          out.dispose();
          return {
            config: {
              peft_type: "P_TUNING",
              task_type: "CAUSAL_LM",
              num_virtual_tokens: p,
              token_dim: dim,
              num_transformer_submodules: 1,
              num_attention_heads: c.nHeads,
              num_layers: c.nLayers,
              encoder_reparameterization_type: "MLP",
              encoder_hidden_size: h,
              encoder_num_layers: 2,
              encoder_dropout: 0.0,
              base_model_name_or_path: null,
            },
            tensors: new Map([["prompt_embeddings", { data, shape: [p, dim] }]]),
          };
        },
      }),
      prompt,
    };
  },
};
