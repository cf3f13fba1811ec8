/**
 * DeLoRA: decoupled low-rank adaptation (Bini et al. 2025, "Decoupling Angles and Strength in
 * Low-rank Adaptation"), as Hugging Face PEFT's `DeloraConfig` / `delora.layer.DeloraLinear`
 * (PEFT 0.20).
 *
 * Formula (PEFT `_compute_delta`): dW = B diag(lambda / r / (||a_i|| ||b_i||)) A diag(||W_:,j||),
 * A [r, in] with rows a_i, B [out, r] with columns b_i, both norms clamped below at 1e-4, lambda a
 * trainable scalar (PEFT `delora_lambda`, default 15) and ||W_:,j|| the norm of the frozen
 * weight's input column j (PEFT's `delora_w_norm` buffer, computed once from the base weight, the
 * dequantized one under quantization). Each rank-1 term has unit Frobenius norm before the scale,
 * so ||dW diag(1/||W_:,j||)||_F <= |lambda|: the update's direction (A, B) and strength (lambda)
 * are decoupled. Forward: y = W x + b + B (s ⊙ (A (w ⊙ x))) with s_i = lambda / r / (||a_i|| ||b_i||).
 * The paper writes the weight-norm factor as a scalar ||W||; PEFT (followed here) uses the
 * per-input-column norms.
 *
 * Initialisation (PEFT `reset_delora_parameters`): A Kaiming-uniform (bound 1/sqrt(in)), B = 0,
 * lambda = 15, so dW = 0 and the adapted model equals the frozen one.
 *
 * Trainable parameters per adapted layer: r (in + out) + 1. Mergeable: W' = W + dW.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { kaimingUniform, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { checkRank } from "./lora.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** DeLoRA options (PEFT `DeloraConfig`, with its defaults). */
export const deloraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Rank r (PEFT `r`). */
  rank: z.number().int().positive().default(8),
  /** Initial strength lambda (PEFT `delora_lambda`). */
  deloraLambda: z.number().default(15),
}).strict();

/** DeLoRA options after defaults. */
export type DeloraConfig = z.infer<typeof deloraSchema>;

/** A frozen linear layer plus a normalised, strength-bounded low-rank update. */
export class DeloraLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    readonly a: tf.Variable,
    readonly b: tf.Variable,
    readonly lambda: tf.Variable,
    /** ||W_:,j|| [in], frozen. */
    readonly wNorm: tf.Tensor1D,
    readonly rank: number,
  ) {
    super(base);
  }

  /**
   * s_i = lambda / r / (max(||a_i||, 1e-4) max(||b_i||, 1e-4)) [r]. The clamped norm is written
   * sqrt(max(sum x^2, 1e-8)) (the same value) so that its gradient is 0, not NaN, at B = 0.
   */
  #scale(): tf.Tensor1D {
    const clampedNorm = (t: tf.Tensor, axis: number) => tf.sqrt(tf.maximum(tf.sum(tf.square(t), axis), 1e-8));
    const an = clampedNorm(this.a, 1);
    const bn = clampedNorm(this.b, 0);
    return tf.div(tf.div(this.lambda, this.rank), tf.mul(an, bn)) as tf.Tensor1D;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const h = tf.mul(tf.matMul(tf.mul(x, this.wNorm), this.a, false, true), this.#scale());
    return tf.add(this.base.forward(x), tf.matMul(h, this.b, false, true));
  }

  /** dW = B diag(s) A diag(||W_:,j||). */
  delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(tf.mul(this.b, this.#scale()), this.a), tf.reshape(this.wNorm, [1, -1])) as tf.Tensor2D
    );
  }
}

/** DeLoRA. */
export const delora: MethodDefinition<DeloraConfig> = {
  name: "delora",
  description:
    "normalised low-rank update, strength lambda decoupled from direction (Bini et al. 2025; PEFT DeLoRA)",
  schema: deloraSchema,
  mergeable: true,
  // PEFT DeLoRA: delora_A [r, in] Kaiming, delora_B [out, r] zeros, delora_lambda [1], and the
  // persistent buffer delora_w_norm [in] in the saved state.
  contract: {
    testOptions: { targets: "all-linear", rank: 2 },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * (s.in + s.out) + 1),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [name, s] of targetShapes(m, c.targets)) {
        out.set(`${name}.delora_A`, [c.rank, s.in]);
        out.set(`${name}.delora_B`, [s.out, c.rank]);
        out.set(`${name}.delora_lambda`, [1]);
        out.set(`${name}.delora_w_norm`, [s.in]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const norms: tf.Tensor[] = [];
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      checkRank(config.rank, base);
      const [r, inF, out] = [config.rank, base.inFeatures, base.outFeatures];
      const a = trainableVariable(kaimingUniform(ctx.rng.fork(`${name}.delora_A`), [r, inF]), [r, inF]);
      const b = trainableVariable(new Float32Array(out * r), [out, r]);
      const lambda = trainableVariable(Float32Array.of(config.deloraLambda), [1]);
      const wNorm = tf.tidy(() => tf.norm(base.denseWeight(), "euclidean", 0) as tf.Tensor1D);
      norms.push(wNorm);
      vars.set(`${name}.delora_A`, a);
      vars.set(`${name}.delora_B`, b);
      vars.set(`${name}.delora_lambda`, lambda);
      return new DeloraLinear(base, a, b, lambda, wNorm, r);
    });
    const named = (v: tf.Tensor): NamedArray => ({ data: v.dataSync() as Float32Array, shape: [...v.shape] });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, owned: norms, nominalRank: config.rank }),
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          const m = peftModuleName(name);
          tensors.set(`${m}.delora_A`, named(l.a));
          tensors.set(`${m}.delora_B`, outputRows(name, l.b, model.config)); // rows: outputs
          tensors.set(`${m}.delora_lambda`, named(l.lambda));
          tensors.set(`${m}.delora_w_norm`, named(l.wNorm));
        }
        return {
          config: {
            peft_type: "DELORA",
            task_type: "CAUSAL_LM",
            r: config.rank,
            delora_lambda: config.deloraLambda,
            module_dropout: 0,
            ...peftTargetFields(targets, model.config.nLayers),
            bias: "none",
            init_weights: true,
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
