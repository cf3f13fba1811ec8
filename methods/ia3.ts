/**
 * IA3: Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al. 2022, "Few-Shot
 * Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning"; Hugging Face
 * PEFT `IA3Config`).
 *
 * Formula: learned vectors rescale activations elementwise. For attention targets (default k, v)
 * the layer's output is scaled, y = l ⊙ (W x + b) with l [out] (the paper's l_k, l_v on keys and
 * values); for feedforward targets (default `down`) the layer's input is scaled, y = W (l ⊙ x) + b
 * with l [in], i.e. the paper's l_ff on the FFN's intermediate activation (SwiGLU's
 * silu(gate x) ⊙ up x here). Which targets scale their input is the option `feedforward`, like
 * PEFT's `feedforward_modules` (it must be a subset of `targets`).
 *
 * Initialisation: every l is ones (PEFT `init_ia3_weights`), so the adapted model equals the frozen
 * one. Trainable parameters: out per output-scaled layer, in per input-scaled layer; with the
 * defaults 2 kv_dim + hidden_dim per decoder layer (kv_dim = nKvHeads headDim).
 *
 * Mergeable: output scaling folds into W's rows (W' = diag(l) W, and b' = l ⊙ b where the layer has
 * a bias, as PEFT does), input scaling into W's columns (W' = W diag(l)).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, targetShapes } from "./targets.ts";
import { constantVariable, optionFlag, wrapLinears } from "./common.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** IA3 options. */
export const ia3Schema = z.object({
  /** Layers to rescale (preset or pattern, see targets.ts). */
  targets: z.string().default("k,v,down"),
  /** Targets whose input (not output) is rescaled, PEFT's feedforward_modules; "" for none. */
  feedforward: z.string().default("down"),
}).strict();

/** IA3 options after defaults. */
export type Ia3Config = z.infer<typeof ia3Schema>;

/** A frozen linear layer with a learned rescaling of its output (or, feedforward, its input). */
export class Ia3Linear extends AdaptedLinear {
  constructor(base: LinearModule, readonly l: tf.Variable, readonly feedforward: boolean) {
    super(base);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return this.feedforward ? this.base.forward(tf.mul(x, this.l)) : tf.mul(this.base.forward(x), this.l);
  }

  /** W diag(l) - W or diag(l) W - W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const shape = this.feedforward ? [1, -1] : [-1, 1];
      return tf.mul(this.base.denseWeight(), tf.sub(tf.reshape(this.l, shape), 1));
    });
  }

  override mergedBias(): tf.Tensor1D | null {
    const b = this.base.bias;
    return b && !this.feedforward ? tf.mul(b, this.l) : null;
  }
}

/** IA3. */
export const ia3: MethodDefinition<Ia3Config> = {
  name: "ia3",
  description: "learned rescaling of keys, values and the FFN activation, init ones (Liu et al. 2022)",
  schema: ia3Schema,
  mergeable: true,
  defaultLr: 0.01,
  // PEFT `IA3Layer.update_layer`: ia3_l [out] on output-scaled layers, [in] on feedforward ones.
  contract: {
    testOptions: {},
    identityAtInit: true,
    parameterCount: (m, c) => {
      const ff = c.feedforward.trim() === "" ? new Set() : new Set(targetShapes(m, c.feedforward).keys());
      let total = 0;
      for (const [name, s] of targetShapes(m, c.targets)) total += ff.has(name) ? s.in : s.out;
      return total;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const ff = new Set(config.feedforward.trim() === "" ? [] : selectTargets(model, config.feedforward));
    for (const name of ff) {
      if (!targets.includes(name)) {
        throw new Error(
          `${optionFlag("feedforward", config.feedforward)}: ${name} is not among ${
            optionFlag("targets", config.targets)
          }`,
        );
      }
    }
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const isFf = ff.has(name);
      const l = constantVariable(1, [isFf ? base.inFeatures : base.outFeatures]);
      vars.set(`${name}.ia3_l`, l);
      return new Ia3Linear(base, l, isFf);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore });
  },
};
