/**
 * GLoRA: Generalized LoRA (Chavan et al. 2023, "One-for-All: Generalized LoRA for
 * Parameter-Efficient Fine-tuning"; Hugging Face PEFT `GloraConfig`).
 *
 * The paper's unified formulation of a linear layer with frozen W0 [out, in] and bias b0:
 *   W' = W0 + W0 ⊙ A + B,   b' = b0 + b0 ⊙ D + E + W0 C,   y = W' x + b'.
 * Support tensors as used here (one fixed configuration; the paper searches per-layer choices
 * among LoRA / vector / scalar / none with an evolutionary search, which we do not run):
 * - A = Ad Au, low-rank (PEFT `config_A_B = "lora"`): Ad [out, r], Au [r, in]; scales W0 elementwise;
 * - B = Bd Bu, low-rank: Bd [out, r], Bu [r, in]; an additive LoRA-style update;
 * - C [in], vector (the paper's "prompt" term; W0 C is an input-independent shift of the output);
 * - E [out], vector (a learned bias);
 * - D [out], vector, only where the layer has a bias b0 (Qwen2 q/k/v). Llama layers have no bias,
 *   so D has nothing to scale there and is not created.
 * Initialisation (PEFT `reset_glora_parameters`): Au, Bu Kaiming-uniform (a = sqrt(5)); Ad, Bd, C,
 * D, E zeros, so A = B = 0, b' = b0 and the adapted model equals the frozen one at init.
 *
 * Trainable parameters per adapted layer: 2 r (in + out) + in + out (+ out with a bias).
 * Mergeable (the paper's structural re-parameterisation): W' and b' are computed explicitly and
 * stored as a plain layer; a layer without bias gains one (b' = E + W0 C). The forward pass also
 * builds W' and does one matmul (no alpha scaling, as in the paper and PEFT). Options: `targets`
 * (q+v) and `rank` (8), LoRA's defaults.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets } from "./targets.ts";
import { layerFactors, wrapLinears } from "./common.ts";
import { checkRank, loraSchema } from "./lora.ts";
import { AdaptedLinear, mergeWithBias, wrappedMethod } from "./wrapped.ts";

/** GLoRA options: LoRA's without alpha. */
export const gloraSchema = loraSchema.omit({ alpha: true });

/** GLoRA options after defaults. */
export type GloraConfig = z.infer<typeof gloraSchema>;

/** GLoRA support tensors of one layer. */
export interface GloraTensors {
  ad: tf.Variable;
  au: tf.Variable;
  bd: tf.Variable;
  bu: tf.Variable;
  c: tf.Variable;
  e: tf.Variable;
  /** Only where the base layer has a bias. */
  d: tf.Variable | null;
}

/** A frozen linear layer computing with W' = W0 + W0 ⊙ A + B and b' = b0 + b0 ⊙ D + E + W0 C. */
export class GloraLinear extends AdaptedLinear {
  constructor(base: LinearModule, readonly t: GloraTensors) {
    super(base);
  }

  /** W0 ⊙ A + B. */
  #delta(w0: tf.Tensor2D): tf.Tensor2D {
    const t = this.t;
    return tf.add(tf.mul(w0, tf.matMul(t.ad, t.au)), tf.matMul(t.bd, t.bu));
  }

  /** b' [out]. */
  #bias(w0: tf.Tensor2D): tf.Tensor1D {
    const t = this.t;
    let b = tf.add(t.e, tf.reshape(tf.matMul(w0, tf.reshape(t.c, [-1, 1])), [-1])) as tf.Tensor1D;
    const b0 = this.base.bias;
    if (b0) b = tf.add(b, tf.add(b0, tf.mul(b0, t.d!)));
    return b;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const w0 = this.base.denseWeight();
    const w = tf.add(w0, this.#delta(w0));
    return tf.add(tf.matMul(x, w, false, true), this.#bias(w0));
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => this.#delta(this.base.denseWeight()));
  }

  override mergedBias(): tf.Tensor1D {
    return tf.tidy(() => this.#bias(this.base.denseWeight()));
  }
}

/** GLoRA. */
export const glora: MethodDefinition<GloraConfig> = {
  name: "glora",
  description: "generalized LoRA: W0 + W0⊙A + B with low-rank A, B; bias E + W0 C (Chavan et al. 2023)",
  schema: gloraSchema,
  mergeable: true,
  apply: (model, config, ctx) => {
    const r = config.rank;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, selectTargets(model, config.targets), (base, name) => {
      checkRank(r, base);
      const [out, inp] = [base.outFeatures, base.inFeatures];
      const { zeros, kaiming } = layerFactors(vars, name, ctx.rng, "glora_");
      return new GloraLinear(base, {
        ad: zeros("Ad", [out, r]),
        au: kaiming("Au", [r, inp]),
        bd: zeros("Bd", [out, r]),
        bu: kaiming("Bu", [r, inp]),
        c: zeros("C", [inp]),
        e: zeros("E", [out]),
        d: base.bias ? zeros("D", [out]) : null,
      });
    });
    return wrappedMethod({
      vars,
      wrapped,
      restore,
      nominalRank: r,
      merge: () => mergeWithBias(model, wrapped, ctx),
    });
  },
};
