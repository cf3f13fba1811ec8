/**
 * LLaMA-Adapter (Zhang et al., 2023, "LLaMA-Adapter: Efficient Fine-tuning of Language Models with
 * Zero-init Attention"), as Hugging Face PEFT's `adaption_prompt` (`AdaptedAttention`) computes it.
 *
 * Formula: each of the top `adapterLayers` decoder layers l holds an adaption prompt P_l [L, dim]
 * (`adapterLen` L) and a scalar gate g_l. The prompt goes through the layer's own frozen key and value
 * projections, K = k_proj(P_l), V = v_proj(P_l) [L, kvDim] (no RoPE, no q/k norm: PEFT's
 * `k_proj(adaption_prompt)`), and every query q_h of head h (after the layer's q-norm and RoPE, the
 * queries the layer attends with; PEFT recomputes them the same way) attends to them with its own
 * softmax, separate from the tokens' (the paper's independent softmax):
 *   a_h = g_l softmax(q_h K_{kv(h)}^T / sqrt(headDim)) V_{kv(h)},
 * with kv(h) the key/value head of h's group (PEFT's `repeat_interleave` for grouped-query
 * attention). The layer's attention output becomes o_proj(attn) + o_proj(a).
 *
 * Initialisation: P_l ~ N(0, 1) (PEFT's `normal_()`, after the official repository's nn.Embedding),
 * from ctx.rng.fork(`layers.${l}.adaption_prompt`); g_l = 0 ("zero-init attention"), so the
 * method is exactly the identity at init, and at init only the gates receive a gradient.
 * PEFT keeps the gate raw (no tanh, unlike the paper's later code) and one gate per layer: so here.
 *
 * Trainable parameters: adapterLayers (L dim + 1). Not mergeable (the prompt is attention memory).
 * Defaults: {@link llamaAdapterSchema}; PEFT export (refused for Qwen architectures): `peftExport`.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import type { LlamaConfig } from "../models/config.ts";
import { constantVariable, ownedVariablesMethod, trainableVariable } from "./common.ts";
import { setHook } from "./bottleneck.ts";

/** The paper's (and PEFT's documented) number of adapted layers, capped at the model's depth. */
export const DEFAULT_ADAPTER_LAYERS = 30;

/**
 * LLaMA-Adapter options. PEFT's `AdaptionPromptConfig` has no defaults (both fields must be given);
 * its documentation and the paper use adapter_len 10 and adapter_layers 30 (of LLaMA-7B's 32):
 * `adapterLen` 10, and `adapterLayers` min(30, nLayers) when not given (a given value above the
 * model's depth is an error, as in PEFT).
 */
export const llamaAdapterSchema = z.object({
  /** Adaption prompt length L per layer (PEFT `adapter_len`). */
  adapterLen: z.number().int().positive().default(10),
  /** Number of top decoder layers adapted (PEFT `adapter_layers`); absent: min(30, nLayers). */
  adapterLayers: z.number().int().positive().optional(),
}).strict();

/** LLaMA-Adapter options after defaults. */
export type LlamaAdapterConfig = z.infer<typeof llamaAdapterSchema>;

/** How many top layers the options adapt on a model with this config. */
export function adaptedLayerCount(m: LlamaConfig, c: LlamaAdapterConfig): number {
  return c.adapterLayers ?? Math.min(DEFAULT_ADAPTER_LAYERS, m.nLayers);
}

/** LLaMA-Adapter: zero-gated adaption prompts in the top layers' attention. */
export const llamaAdapter: MethodDefinition<LlamaAdapterConfig> = {
  name: "llama-adapter",
  description:
    "adaption prompts in the top layers' attention with a zero-init gate (Zhang et al. 2023; PEFT adaption_prompt)",
  schema: llamaAdapterSchema,
  mergeable: false,
  contract: {
    testOptions: { adapterLen: 3 },
    identityAtInit: true,
    // P_l [L, dim] and g_l [1] per adapted layer.
    parameterCount: (m, c) => adaptedLayerCount(m, c) * (c.adapterLen * m.dim + 1),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (let l = m.nLayers - adaptedLayerCount(m, c); l < m.nLayers; l++) {
        out.set(`model.model.layers.${l}.self_attn.adaption_prompt`, [1, c.adapterLen, m.dim]);
        out.set(`model.model.layers.${l}.self_attn.adaption_gate`, [1]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const { dim, nLayers, nHeads, nKvHeads, headDim } = model.config;
    const count = adaptedLayerCount(model.config, config);
    if (count > nLayers) {
      throw new Error(
        `llama-adapter: --opt adapterLayers=${count} exceeds the model's ${nLayers} layers`,
      );
    }
    const len = config.adapterLen;
    const first = nLayers - count;
    const vars = new Map<string, tf.Variable>();
    for (let l = first; l < nLayers; l++) {
      const key = `layers.${l}.adaption_prompt`;
      vars.set(key, trainableVariable(ctx.rng.fork(key).normalArray(len * dim, 1), [len, dim]));
      vars.set(`layers.${l}.adaption_gate`, constantVariable(0, [1]));
    }
    const groups = nHeads / nKvHeads;
    // The heads' a is added to the attention context before o_proj (`model.hooks.attentionContext`),
    // which gives o_proj(attn) + o_proj(a) because o_proj has no bias in these models.
    const restore = setHook(model, "attentionContext", (layer, q) => {
      if (layer < first) return null;
      const prompt = vars.get(`layers.${layer}.adaption_prompt`)! as tf.Tensor2D;
      const gate = vars.get(`layers.${layer}.adaption_gate`)!;
      const [batch, t] = q.shape;
      // Keys and values [B, nKv, L, hd] of the prompt through the layer's own projections.
      const heads = (x: tf.Tensor2D) =>
        tf.broadcastTo(tf.transpose(tf.reshape(x, [1, len, nKvHeads, headDim]), [0, 2, 1, 3]), [
          batch,
          nKvHeads,
          len,
          headDim,
        ]);
      const k = heads(model.linear(`layers.${layer}.attn.k`).forward(prompt));
      const v = heads(model.linear(`layers.${layer}.attn.v`).forward(prompt));
      // Queries [B, nKv, groups*T, hd] with the heads of one KV group contiguous (h -> h / groups).
      const qh = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [batch, nKvHeads, groups * t, headDim]);
      const scores = tf.mul(tf.matMul(qh, k, false, true), 1 / Math.sqrt(headDim));
      const probs = tf.mul(tf.softmax(scores), gate);
      const out = tf.reshape(tf.matMul(probs, v), [batch, nHeads, t, headDim]);
      return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * t, nHeads * headDim]) as tf.Tensor2D;
    }, "llama-adapter");
    const llamaFamily = /^(Llama|Mistral)ForCausalLM$/.test(model.config.architecture);
    return ownedVariablesMethod(vars, restore, {
      /**
       * PEFT export: `peft_type: ADAPTION_PROMPT`, `target_modules: self_attn`, adapter_len,
       * adapter_layers, tensors `base_model.model.model.layers.{l}.self_attn.adaption_prompt`
       * [1, L, dim] and `.adaption_gate` [1]. The prompt lives in the hidden space and q/k are
       * permuted alike within each head in a llama2.c model's Hugging Face checkpoint, so it needs no
       * permutation; PEFT supports only `llama`/`mistral` model types, so the export is refused for
       * Qwen architectures.
       */
      peftExport: () => {
        const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
        for (let l = first; l < nLayers; l++) {
          const base = `base_model.model.model.layers.${l}.self_attn`;
          const p = vars.get(`layers.${l}.adaption_prompt`)!;
          tensors.set(`${base}.adaption_prompt`, {
            data: p.dataSync() as Float32Array,
            shape: [1, len, dim],
          });
          tensors.set(`${base}.adaption_gate`, {
            data: vars.get(`layers.${l}.adaption_gate`)!.dataSync() as Float32Array,
            shape: [1],
          });
        }
        return {
          config: {
            peft_type: "ADAPTION_PROMPT",
            task_type: "CAUSAL_LM",
            target_modules: "self_attn",
            adapter_len: len,
            adapter_layers: count,
            base_model_name_or_path: null,
          },
          tensors,
          ...(llamaFamily ? {} : {
            refused:
              `PEFT's adaption prompt supports llama and mistral models only, not ${model.config.architecture}`,
          }),
        };
      },
    });
  },
};
