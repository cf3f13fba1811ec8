/**
 * BitFit: bias-terms fine-tuning (Ben Zaken et al. 2022, "BitFit: Simple Parameter-efficient
 * Fine-tuning for Transformer-based Masked Language-models").
 *
 * BitFit trains only the bias terms of the network. Llama-family linear layers have no biases, so
 * (the usual adaptation, as in PEFT's `bias="all"` on a model that has them, or LLM BitFit ports)
 * each target linear layer gains a zero-initialised trainable bias: y = W x + b, b [out] = 0 at
 * init, so the adapted model equals the frozen one. Where the layer already has a bias (Qwen2's
 * q/k/v), that bias itself trains (its `trainable` flag is set for the run and restored by
 * `dispose`) instead of adding a second one. RMSNorm has no bias, so no norm terms train.
 *
 * Trainable parameters: out per target layer (all-linear: q + k + v + o + gate + up + down output
 * sizes = 2 dim + 2 kv_dim + 2 hidden + dim per decoder layer).
 *
 * Mergeable: a new bias is folded into a plain layer that gets the bias (created as a frozen
 * variable); a base bias trained in place is already part of the model. Options: `targets` only
 * (default all-linear); BitFit has no rank, so `--rank` is rejected by the strict schema.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { loadStateInto, stateOf, trainableVariable, wrapLinears } from "./common.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** BitFit options. */
export const bitfitSchema = z.object({
  /** Layers whose bias trains (preset or pattern, see targets.ts). */
  targets: z.string().default("all-linear"),
}).strict();

/** BitFit options after defaults. */
export type BitfitConfig = z.infer<typeof bitfitSchema>;

/** A frozen bias-free linear layer with a trainable bias. */
export class BiasLinear extends AdaptedLinear {
  constructor(base: LinearModule, readonly b: tf.Variable) {
    super(base);
  }

  override get bias(): tf.Variable {
    return this.b;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(this.base.forward(x), this.b);
  }

  /** BitFit leaves the weight as is. */
  delta(): tf.Tensor2D {
    return tf.zeros([this.outFeatures, this.inFeatures]);
  }

  override mergedBias(): tf.Tensor1D {
    return tf.clone(this.b) as tf.Tensor1D;
  }
}

/** BitFit. */
export const bitfit: MethodDefinition<BitfitConfig> = {
  name: "bitfit",
  description:
    "bias-only tuning: zero-init biases on the target linears, existing biases train (Ben Zaken et al. 2022)",
  schema: bitfitSchema,
  mergeable: true,
  // One bias [out] per target, new or the layer's own.
  contract: {
    testOptions: { targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => s.out),
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const all = new Map<string, tf.Variable>();
    const inPlace: tf.Variable[] = [];
    for (const name of targets) {
      const b = model.linear(name).bias;
      if (b && model.params.get(`${name}.bias`) === b) {
        inPlace.push(b);
        all.set(`${name}.bias`, b);
      }
    }
    const flags = inPlace.map((v) => v.trainable);
    for (const v of inPlace) v.trainable = true;
    const own = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(
      model,
      targets.filter((n) => !all.has(`${n}.bias`)),
      (base, name) => {
        const b = trainableVariable(new Float32Array(base.outFeatures), [base.outFeatures]);
        own.set(`${name}.bias`, b);
        return new BiasLinear(base, b);
      },
    );
    for (const [k, v] of own) all.set(k, v);
    // Optimizer and state order follow the model's layer order.
    const ordered = new Map(targets.map((n) => [`${n}.bias`, all.get(`${n}.bias`)!]));
    const parts = adaptedMethod({ model, ctx, vars: own, wrapped, restore });
    return {
      ...parts,
      trainable: [...ordered.values()],
      state: () => stateOf(ordered),
      loadState: (t) => loadStateInto(ordered, t),
      deltaWeights: undefined,
      dispose: () => {
        parts.dispose();
        inPlace.forEach((v, i) => (v.trainable = flags[i]));
      },
    };
  },
};
