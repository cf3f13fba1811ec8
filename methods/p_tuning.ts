/**
 * P-tuning (Liu et al., 2021, "GPT Understands, Too"), as Hugging Face PEFT's `p_tuning`
 * (`PromptEncoder`) computes it for a causal LM.
 *
 * Formula: p virtual-token embeddings (`virtualTokens`, PEFT `num_virtual_tokens`) come from a
 * prompt encoder over a trainable embedding E [p, dim] and are prepended to every sequence's token
 * embeddings (`model.hooks.promptEmbeddings`; the prompt positions are dropped from the outputs).
 * `encoderType` (PEFT `encoder_reparameterization_type`) picks the encoder, h = `encoderHidden`:
 * - `MLP` (PEFT's default): P = W3 relu(W2 relu(W1 E^T + b1) + b2) + b3, W1 [h, dim], W2 [h, h],
 *   W3 [dim, h], exactly PEFT's `mlp_head` (it ignores `encoder_num_layers` for MLP).
 * - `LSTM` (the paper's): torch's bidirectional `nn.LSTM(dim, h, num_layers=K)` over the p tokens
 *   as one sequence (K = `encoderLayers`, PEFT `encoder_num_layers` 2), each direction per step
 *   [i f g o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, c_t = s(f) c_{t-1} + s(i) tanh(g),
 *   h_t = s(o) tanh(c_t) from h = c = 0; layer k > 0 reads both directions' [p, 2h]; then
 *   P = W2 relu(W1 H + b1) + b2 with W1 [2h, 2h], W2 [dim, 2h] (PEFT's LSTM `mlp_head`).
 *
 * Initialisation, all from ctx.rng: E ~ N(0, 1) (torch nn.Embedding); nn.Linear weight and bias
 * U(+-1/sqrt(fanIn)); every LSTM weight and bias U(+-1/sqrt(h)) (torch's RNN reset). Not identity
 * at init. `encoder_dropout` is PEFT's 0.0. Defaults: `virtualTokens` 20, `encoderHidden` = dim
 * (PEFT's method-comparison "ptuning default"; PEFT itself requires both).
 *
 * Trainable parameters: MLP p dim + (h dim + h) + (h h + h) + (dim h + dim); LSTM p dim +
 * sum_k 2 (4h in_k + 4h h + 8h) (in_0 = dim, in_k = 2h) + (4h^2 + 2h) + (2h dim + dim).
 * Not mergeable: the prompt is an input, not a weight.
 * PEFT export: as `get_prompt_embedding_to_save`, the encoder's output P [p, dim] under the bare
 * key `prompt_embeddings` (PEFT loads it into an inference-mode encoder and uses it as is, without
 * MLP or LSTM), with `peft_type: P_TUNING`, `encoder_reparameterization_type`, `encoder_hidden_size`,
 * `encoder_num_layers`, `num_virtual_tokens`, `token_dim` and the model's layer and head counts.
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
  /** Hidden width h of the prompt encoder (PEFT `encoder_hidden_size`); absent: the model's dim. */
  encoderHidden: z.number().int().positive().optional(),
  /** The encoder (PEFT `encoder_reparameterization_type`): MLP or a bidirectional LSTM. */
  encoderType: z.enum(["MLP", "LSTM"]).default("MLP"),
  /** LSTM layers K (PEFT `encoder_num_layers`, 2); the MLP always has three linear layers. */
  encoderLayers: z.number().int().positive().optional(),
}).strict();

/** P-tuning options after defaults. */
export type PTuningConfig = z.infer<typeof pTuningSchema>;

/** The encoder's hidden width on a model with this config. */
export function encoderHidden(m: LlamaConfig, c: PTuningConfig): number {
  return c.encoderHidden ?? m.dim;
}

/** LSTM layers of the encoder: `encoderLayers`, PEFT's default 2. */
export function encoderLayers(c: PTuningConfig): number {
  return c.encoderLayers ?? 2;
}

/** Closed-form trainable count (module doc). */
export function pTuningParameterCount(m: LlamaConfig, c: PTuningConfig): number {
  const h = encoderHidden(m, c);
  const d = m.dim;
  if (c.encoderType === "MLP") return c.virtualTokens * d + (h * d + h) + (h * h + h) + (d * h + d);
  let lstm = 0;
  for (let k = 0; k < encoderLayers(c); k++) lstm += 2 * (4 * h * (k === 0 ? d : 2 * h) + 4 * h * h + 8 * h);
  return c.virtualTokens * d + lstm + (4 * h * h + 2 * h) + (2 * h * d + d);
}

/**
 * One direction of one torch LSTM layer over the rows of x [T, in] (gate rows i, f, g, o), from
 * zero state; `reverse` runs from the last row to the first. Returns h_t for every row [T, h].
 */
export function lstmDirection(
  x: tf.Tensor2D,
  wIh: tf.Tensor2D,
  wHh: tf.Tensor2D,
  bIh: tf.Tensor1D,
  bHh: tf.Tensor1D,
  reverse: boolean,
): tf.Tensor2D {
  const [T] = x.shape;
  const h = wHh.shape[1];
  const pre = tf.add(affine(x, wIh, bIh), bHh); // [T, 4h], the input part of every step
  let hPrev: tf.Tensor2D = tf.zeros([1, h]);
  let cPrev: tf.Tensor2D = tf.zeros([1, h]);
  const outs: tf.Tensor2D[] = new Array(T);
  for (let s = 0; s < T; s++) {
    const t = reverse ? T - 1 - s : s;
    const gates = tf.add(tf.slice(pre, [t, 0], [1, 4 * h]), tf.matMul(hPrev, wHh, false, true));
    const [i, f, g, o] = tf.split(gates, 4, 1) as tf.Tensor2D[];
    cPrev = tf.add(tf.mul(tf.sigmoid(f), cPrev), tf.mul(tf.sigmoid(i), tf.tanh(g)));
    hPrev = tf.mul(tf.sigmoid(o), tf.tanh(cPrev));
    outs[t] = hPrev;
  }
  return tf.concat(outs, 0);
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

/** P-tuning with PEFT's MLP or bidirectional-LSTM prompt encoder. */
export const pTuning: MethodDefinition<PTuningConfig> = {
  name: "p-tuning",
  description:
    "virtual tokens from an MLP (or bi-LSTM) prompt encoder prepended to the input embeddings (Liu et al. 2021; PEFT)",
  schema: pTuningSchema,
  mergeable: false,
  contract: {
    testOptions: { virtualTokens: 4, encoderHidden: 8 },
    identityAtInit: false,
    parameterCount: pTuningParameterCount,
    peftTensors: (m, c) => new Map([["prompt_embeddings", [c.virtualTokens, m.dim]]]),
  },
  apply: (model, config, ctx): AppliedPTuning => {
    const { dim } = model.config;
    const p = config.virtualTokens;
    const h = encoderHidden(model.config, config);
    const lstm = config.encoderType === "LSTM";
    if (!lstm && config.encoderLayers !== undefined && config.encoderLayers !== 2) {
      throw new Error(
        `p-tuning: --opt encoderLayers=${config.encoderLayers} applies to encoderType=LSTM only (the MLP encoder has 3 linear layers, as PEFT); drop it or add --opt encoderType=LSTM`,
      );
    }
    const rng = ctx.rng.fork("p-tuning");
    const vars = new Map<string, tf.Variable>([
      [
        "prompt_encoder.embedding.weight",
        trainableVariable(rng.fork("embedding").normalArray(p * dim, 1), [p, dim]),
      ],
    ]);
    const K = encoderLayers(config);
    if (lstm) {
      const bound = 1 / Math.sqrt(h);
      for (let k = 0; k < K; k++) {
        const inF = k === 0 ? dim : 2 * h;
        for (const suffix of [`l${k}`, `l${k}_reverse`]) {
          for (
            const [part, shape] of [
              ["weight_ih", [4 * h, inF]],
              ["weight_hh", [4 * h, h]],
              ["bias_ih", [4 * h]],
              ["bias_hh", [4 * h]],
            ] as const
          ) {
            const name = `prompt_encoder.lstm_head.${part}_${suffix}`;
            const size = shape.reduce((a, b) => a * b, 1);
            vars.set(name, trainableVariable(rng.fork(name).uniformArray(size, -bound, bound), [...shape]));
          }
        }
      }
    }
    const mlp: [number, number, number][] = lstm
      ? [[0, 2 * h, 2 * h], [2, dim, 2 * h]]
      : [[0, h, dim], [2, h, h], [4, dim, h]];
    for (const [i, out, inF] of mlp) {
      const { w, b } = torchLinear(rng.fork(`mlp_head.${i}`), out, inF);
      vars.set(`prompt_encoder.mlp_head.${i}.weight`, trainableVariable(w, [out, inF]));
      vars.set(`prompt_encoder.mlp_head.${i}.bias`, trainableVariable(b, [out]));
    }
    const v = <T extends tf.Tensor = tf.Tensor2D>(name: string) =>
      vars.get(`prompt_encoder.${name}`)! as tf.Tensor as T;
    const layer = (x: tf.Tensor2D, i: number) =>
      affine(x, v(`mlp_head.${i}.weight`), v(`mlp_head.${i}.bias`));
    const lstmHead = (x: tf.Tensor2D) => {
      for (let k = 0; k < K; k++) {
        const dir = (s: string, reverse: boolean) =>
          lstmDirection(
            x,
            v(`lstm_head.weight_ih_${s}`),
            v(`lstm_head.weight_hh_${s}`),
            v<tf.Tensor1D>(`lstm_head.bias_ih_${s}`),
            v<tf.Tensor1D>(`lstm_head.bias_hh_${s}`),
            reverse,
          );
        x = tf.concat([dir(`l${k}`, false), dir(`l${k}_reverse`, true)], 1);
      }
      return x;
    };
    const encode = lstm
      ? () => layer(tf.relu(layer(lstmHead(v("embedding.weight")), 0)), 2)
      : () => layer(tf.relu(layer(tf.relu(layer(v("embedding.weight"), 0)), 2)), 4);
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
              encoder_reparameterization_type: config.encoderType,
              encoder_hidden_size: h,
              encoder_num_layers: K,
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
