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
 * - bias side: C [in], vector (the paper's "prompt" term; W0 C is an input-independent shift of the
 *   output), E [out], vector (a learned bias), D [out], vector scaling b0.
 *
 * Convention for the bias side (option `biasTerms`):
 * - "if-bias" (default, PEFT's GLoRA as audited in issue #18): C, D and E exist only on layers whose
 *   base has a bias (Qwen2 q/k/v). A bias-less layer (every Llama layer) gets A and B only and stays
 *   bias-less after merging.
 * - "always" (the paper's formulation): C and E on every adapted layer, D only where there is a b0
 *   to scale; a bias-less layer gains a bias b' = E + W0 C when merged. Adds in + out parameters per
 *   bias-less layer. Use `--opt biasTerms=always`.
 * The run record's method options say which one a run used.
 *
 * Initialisation (PEFT `reset_glora_parameters`): Au, Bu Kaiming-uniform (a = sqrt(5)); Ad, Bd, C,
 * D, E zeros, so A = B = 0, b' = b0 and the adapted model equals the frozen one at init.
 *
 * Trainable parameters per adapted layer: 2 r (in + out), plus in + 2 out on a layer with a bias;
 * with "always", 2 r (in + out) + in + out on a layer without one.
 * Mergeable (the paper's structural re-parameterisation): W' and b' are computed explicitly and
 * stored as a plain layer. The forward pass also builds W' and does one matmul (no alpha scaling,
 * as in the paper and PEFT). Options: `targets` (q+v) and `rank` (8), LoRA's defaults; `biasTerms`.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { layerFactors, wrapLinears } from "./common.ts";
import { checkRank, loraSchema } from "./lora.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** GLoRA options: LoRA's without alpha, and where the bias-side terms C, D, E are created. */
export const gloraSchema = loraSchema.omit({ alpha: true }).extend({
  /** "if-bias": only on layers with a bias (PEFT); "always": C and E on every layer (the paper). */
  biasTerms: z.enum(["if-bias", "always"]).default("if-bias"),
}).strict();

/** GLoRA options after defaults. */
export type GloraConfig = z.infer<typeof gloraSchema>;

/** GLoRA support tensors of one layer. */
export interface GloraTensors {
  ad: tf.Variable;
  au: tf.Variable;
  bd: tf.Variable;
  bu: tf.Variable;
  /** Bias side: null where not created (see the module doc's `biasTerms`). */
  c: tf.Variable | null;
  e: tf.Variable | null;
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

  /** b' = b0 + b0 ⊙ D + E + W0 C [out], from the terms that exist; null when the layer has none. */
  #bias(w0: tf.Tensor2D): tf.Tensor1D | null {
    const { c, d, e } = this.t;
    const b0 = this.base.bias;
    const terms: tf.Tensor1D[] = [];
    if (b0) terms.push(b0 as tf.Tensor1D);
    if (b0 && d) terms.push(tf.mul(b0, d));
    if (e) terms.push(e as tf.Tensor1D);
    if (c) terms.push(tf.reshape(tf.matMul(w0, tf.reshape(c, [-1, 1])), [-1]));
    return terms.length === 0 ? null : terms.reduce((a, b) => tf.add(a, b) as tf.Tensor1D);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const w0 = this.base.denseWeight();
    const y = tf.matMul(x, tf.add(w0, this.#delta(w0)), false, true) as tf.Tensor2D;
    const b = this.#bias(w0);
    return b ? tf.add(y, b) as tf.Tensor2D : y;
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => this.#delta(this.base.denseWeight()));
  }

  override mergedBias(): tf.Tensor1D | null {
    // Keep a tensor-free null out of tidy (which needs a tensor or nothing returned).
    if (!this.base.bias && !this.t.c && !this.t.e) return null;
    return tf.tidy(() => this.#bias(this.base.denseWeight())!);
  }
}

/** GLoRA. */
export const glora: MethodDefinition<GloraConfig> = {
  name: "glora",
  description:
    "generalized LoRA: W0+W0⊙A+B, low-rank A, B; bias b0+b0⊙D+E+W0 C where b0 exists (Chavan et al. 2023)",
  schema: gloraSchema,
  mergeable: true,
  // Ad, Bd [out, r], Au, Bu [r, in]; C [in], D [out], E [out] on a layer with a bias (PEFT GLoRA),
  // C and E on every layer with biasTerms "always".
  contract: {
    testOptions: { rank: 2, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const side = s.bias ? s.in + 2 * s.out : c.biasTerms === "always" ? s.in + s.out : 0;
        return 2 * c.rank * (s.in + s.out) + side;
      }),
  },
  apply: (model, config, ctx) => {
    const r = config.rank;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, selectTargets(model, config.targets), (base, name) => {
      checkRank(r, base);
      const [out, inp] = [base.outFeatures, base.inFeatures];
      const { zeros, kaiming } = layerFactors(vars, name, ctx.rng, "glora_");
      const biasSide = Boolean(base.bias) || config.biasTerms === "always";
      return new GloraLinear(base, {
        ad: zeros("Ad", [out, r]),
        au: kaiming("Au", [r, inp]),
        bd: zeros("Bd", [out, r]),
        bu: kaiming("Bu", [r, inp]),
        c: biasSide ? zeros("C", [inp]) : null,
        e: biasSide ? zeros("E", [out]) : null,
        d: base.bias ? zeros("D", [out]) : null,
      });
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: r });
  },
};
