/**
 * GLoRA: Generalized LoRA (Chavan et al. 2023, "One-for-All: Generalized LoRA for
 * Parameter-Efficient Fine-tuning"; Hugging Face PEFT `GloraConfig`).
 *
 * Formula, the paper's unified formulation of a linear layer with frozen W0 [out, in] and bias b0:
 *   W' = W0 + W0 ⊙ A + B,   b' = b0 + b0 ⊙ D + E + W0 C,   y = W' x + b',
 * with A = Ad Au (Ad [out, r], Au [r, in]; PEFT `config_A_B = "lora"`) scaling W0 elementwise,
 * B = Bd Bu (Bd [out, r], Bu [r, in]) an additive LoRA-style update, and vectors C [in] (the paper's
 * "prompt" term: W0 C is an input-independent shift of the output), E [out] (a learned bias) and
 * D [out] (scaling b0); no alpha scaling, as in the paper and PEFT. One fixed configuration: the
 * paper's evolutionary search over per-layer LoRA / vector / scalar / none choices is not run.
 * Bias side (`biasTerms`, see {@link gloraSchema}): "if-bias" (default, PEFT's) creates C, D, E only
 * on layers whose base has a bias; "always" (the paper's) puts C and E on every adapted layer.
 *
 * Initialisation (PEFT `reset_glora_parameters`): Au, Bu Kaiming-uniform (a = sqrt(5)); Ad, Bd, C,
 * D, E zeros, so A = B = 0, b' = b0 and the adapted model equals the frozen one at init.
 *
 * Trainable parameters per adapted layer: 2 r (in + out), plus in + 2 out on a layer with a bias;
 * with "always", 2 r (in + out) + in + out on a layer without one.
 * Mergeable (the paper's structural re-parameterisation): W' and b' are computed explicitly and
 * stored as a plain layer.
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

/**
 * GLoRA options: LoRA's without alpha (`targets` q+v and `rank` 8, LoRA's defaults), and where the
 * bias-side terms C, D, E are created (`biasTerms`).
 */
export const gloraSchema = loraSchema.omit({ alpha: true }).extend({
  /**
   * - "if-bias" (default, PEFT's GLoRA as audited in issue #18): C, D and E exist only on layers
   *   whose base has a bias (Qwen2 q/k/v). A bias-less layer (every Llama layer) gets A and B only
   *   and stays bias-less after merging.
   * - "always" (the paper's formulation): C and E on every adapted layer, D only where there is a
   *   b0 to scale; a bias-less layer gains a bias b' = E + W0 C when merged. Adds in + out
   *   parameters per bias-less layer. Use `--opt biasTerms=always`.
   * The run record's method options say which one a run used.
   */
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
  /** Bias side: null where not created (see {@link gloraSchema}'s `biasTerms`). */
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

  /** Builds W' and does one matmul (no alpha scaling, as in the paper and PEFT), then adds b'. */
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
