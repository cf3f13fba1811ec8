/**
 * LoHa: low-rank Hadamard product (FedPara, Hyeon-Woo et al. 2022; LyCORIS; Hugging Face PEFT
 * `LoHaConfig`).
 *
 * Formula: y = W x + dW x with dW = s (B1 A1) ⊙ (B2 A2), B1, B2 [out, r], A1, A2 [r, in],
 * s = alpha / r (PEFT's `scaling`). The Hadamard product of two rank-r matrices has rank up to r^2,
 * so LoHa reaches higher-rank updates than LoRA for the same 2 r (in + out) parameters.
 *
 * Initialisation (PEFT `reset_adapter_parameters`, which follows FedPara's He init): B1, A1, B2
 * Kaiming-uniform (a = sqrt(5), bound 1/sqrt(fan_in): 1/sqrt(r) for B, 1/sqrt(in) for A) and A2
 * zeros (PEFT's `hada_w2_b`), so dW = 0 at init and the adapted model equals the frozen one.
 * Names map to PEFT as B1 = hada_w1_a, A1 = hada_w1_b, B2 = hada_w2_a, A2 = hada_w2_b.
 *
 * Trainable parameters per adapted layer: 2 r (in + out). Mergeable: W' = W + dW.
 *
 * Design choices: options and defaults are LoRA's (`targets` q+v, `rank` 8, `alpha` 16) so LoHa
 * and LoRA compare at equal settings (PEFT's LoHa defaults are r = 8, alpha = 8); the forward
 * materialises dW (out x in x r flops) because the Hadamard product does not factor through x;
 * no rank/module dropout and no Conv/effective-conv2d/ABBA variants. `--rank` is checked against
 * min(in, out) for each factor pair.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { layerFactors, wrapLinears } from "./common.ts";
import { checkRank, type LoraConfig, loraSchema } from "./lora.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** A frozen linear layer plus s (B1 A1) ⊙ (B2 A2). */
export class LohaLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    readonly b1: tf.Variable,
    readonly a1: tf.Variable,
    readonly b2: tf.Variable,
    readonly a2: tf.Variable,
    readonly scale: number,
  ) {
    super(base);
  }

  #delta(): tf.Tensor2D {
    const h = tf.mul(tf.matMul(this.b1, this.a1), tf.matMul(this.b2, this.a2));
    return tf.mul(h, this.scale);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(this.base.forward(x), tf.matMul(x, this.#delta(), false, true));
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => this.#delta());
  }
}

/** LoHa. */
export const loha: MethodDefinition<LoraConfig> = {
  name: "loha",
  description: "low-rank Hadamard update s*(B1 A1)⊙(B2 A2), s = alpha/r (FedPara / LyCORIS LoHa)",
  schema: loraSchema,
  mergeable: true,
  // PEFT LoHa: hada_w1_a, hada_w2_a [out, r] and hada_w1_b, hada_w2_b [r, in].
  contract: {
    testOptions: { rank: 2, alpha: 4, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => 2 * c.rank * (s.in + s.out)),
  },
  apply: (model, config, ctx) => {
    const r = config.rank;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, selectTargets(model, config.targets), (base, name) => {
      checkRank(r, base);
      const [out, inp] = [base.outFeatures, base.inFeatures];
      const f = layerFactors(vars, name, ctx.rng);
      const b1 = f.kaiming("hada_w1_a", [out, r]);
      const a1 = f.kaiming("hada_w1_b", [r, inp]);
      const b2 = f.kaiming("hada_w2_a", [out, r]);
      const a2 = f.zeros("hada_w2_b", [r, inp]);
      return new LohaLinear(base, b1, a1, b2, a2, config.alpha / r);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: r });
  },
};
