/**
 * Prefix tuning (Li & Liang, 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation").
 *
 * Formula: every decoder layer l attends, before the real tokens, to p trainable key and value
 * vectors K_l, V_l [p, kvDim] (`virtualTokens` p, default 8; kvDim = nKvHeads * headDim), through
 * `model.hooks.kvPrefix`. Every real token sees the whole prefix (it is never masked), and the
 * prefixes enter after RoPE, i.e. position-free, like Hugging Face PEFT's past_key_values.
 *
 * Reparametrisation (the paper's Sec. 4.3, needed for stable training): the prefixes are not free
 * parameters but the output of a 2-layer MLP on a small embedding,
 *   [K_1 V_1 ... K_L V_L] = W2 tanh(W1 E^T + b1) + b2,
 * with E [p, d], W1 [h, d], W2 [L * 2 * kvDim, h] (`prefixHidden` h, default 64; PEFT's
 * `prefix_projection` with `encoder_hidden_size`). Layer l only evaluates its own rows of W2, so a
 * forward pass costs one p x d x h product per layer plus p x h x 2 kvDim.
 * After training the MLP can be dropped: `materialize()` evaluates it once and serves the prefixes
 * as constants (the paper keeps only the prefix for inference); `prefixes()` returns them.
 *
 * Initialisation: E ~ N(0, 1) (PEFT's nn.Embedding default), W1, W2 Kaiming-uniform, b1 = b2 = 0,
 * all from ctx.rng. Not identity at init (attending to the prefix changes every token).
 *
 * Trainable parameters: p d + h d + h + 2 L kvDim h + 2 L kvDim.
 * Not mergeable: the prefix is extra attention memory, not a weight.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { AppliedMethod, MethodDefinition } from "./types.ts";
import { kaimingUniform, loadStateInto, stateOf, trainableVariable } from "./common.ts";
import { affine, assertHookFree, setHook } from "./bottleneck.ts";

/** Prefix-tuning options. */
export const prefixTuningSchema = z.object({
  /** Prefix length p (virtual tokens per layer). */
  virtualTokens: z.number().int().positive().default(8),
  /** Hidden width h of the reparametrisation MLP. */
  prefixHidden: z.number().int().positive().default(64),
}).strict();

/** Prefix-tuning options after defaults. */
export type PrefixTuningConfig = z.infer<typeof prefixTuningSchema>;

/** The applied method plus prefix materialisation. */
export interface AppliedPrefixTuning extends AppliedMethod {
  /** The current key/value prefixes of every layer (caller disposes). */
  prefixes(): { k: tf.Tensor2D; v: tf.Tensor2D }[];
  /** Evaluate the MLP once and serve the prefixes as constants from now on. */
  materialize(): void;
}

/** Prefix tuning with the MLP reparametrisation. */
export const prefixTuning: MethodDefinition<PrefixTuningConfig> = {
  name: "prefix-tuning",
  description: "per-layer key/value prefixes produced by a reparametrisation MLP (Li & Liang 2021)",
  schema: prefixTuningSchema,
  mergeable: false,
  // E [p, d], W1 [h, d], b1 [h], W2 [2 L kvDim, h], b2 [2 L kvDim] (PEFT prefix_projection).
  contract: {
    testOptions: { virtualTokens: 4, prefixHidden: 8 },
    identityAtInit: false,
    parameterCount: (m, c) => {
      const kv = m.nKvHeads * m.headDim;
      const { virtualTokens: p, prefixHidden: h } = c;
      return p * m.dim + h * m.dim + h + 2 * m.nLayers * kv * h + 2 * m.nLayers * kv;
    },
  },
  apply: (model, config, ctx): AppliedPrefixTuning => {
    assertHookFree(model, "kvPrefix", "prefix-tuning");
    const { dim: d, nLayers: l, nKvHeads, headDim } = model.config;
    const kv = nKvHeads * headDim;
    const { virtualTokens: p, prefixHidden: h } = config;
    const vars = new Map<string, tf.Variable>([
      ["prefix.embedding", trainableVariable(ctx.rng.fork("prefix.embedding").normalArray(p * d), [p, d])],
      [
        "prefix.mlp.0.weight",
        trainableVariable(kaimingUniform(ctx.rng.fork("prefix.mlp.0"), [h, d]), [h, d]),
      ],
      ["prefix.mlp.0.bias", trainableVariable(new Float32Array(h), [h])],
      [
        "prefix.mlp.2.weight",
        trainableVariable(kaimingUniform(ctx.rng.fork("prefix.mlp.2"), [l * 2 * kv, h]), [l * 2 * kv, h]),
      ],
      ["prefix.mlp.2.bias", trainableVariable(new Float32Array(l * 2 * kv), [l * 2 * kv])],
    ]);
    const v = (name: string) => vars.get(name)! as tf.Variable<tf.Rank.R2>;
    const reparam = (layer: number) => {
      const hidden = tf.tanh(affine(v("prefix.embedding"), v("prefix.mlp.0.weight"), v("prefix.mlp.0.bias")));
      const w2 = tf.slice(v("prefix.mlp.2.weight"), [layer * 2 * kv, 0], [2 * kv, h]);
      const b2 = tf.slice(v("prefix.mlp.2.bias"), [layer * 2 * kv], [2 * kv]);
      const out = affine(hidden, w2, b2);
      return { k: tf.slice(out, [0, 0], [p, kv]), v: tf.slice(out, [0, kv], [p, kv]) };
    };
    let fixed: { k: tf.Tensor2D; v: tf.Tensor2D }[] | null = null;
    const restore = setHook(
      model,
      "kvPrefix",
      (layer) => fixed ? fixed[layer] : reparam(layer),
      "prefix-tuning",
    );
    const prefixes = () => Array.from({ length: l }, (_, layer) => tf.tidy(() => reparam(layer)));
    return {
      trainable: [...vars.values()],
      state: () => stateOf(vars),
      loadState: (t) => loadStateInto(vars, t),
      prefixes,
      materialize: () => {
        if (!fixed) fixed = prefixes();
      },
      dispose: () => {
        restore();
        if (fixed) tf.dispose(fixed.flatMap((f) => [f.k, f.v]));
        tf.dispose([...vars.values()]);
      },
    };
  },
};
