/**
 * OrthoGeoLoRA (Wang et al., 2026): LoRA in SVD form with orthonormal factors, removing LoRA's
 * gauge freedom (B M, A M^{-T} give the same update), scale ambiguity and rank collapse.
 *
 * Formula: dW = s B Σ A^T, y = W x + s B (σ ⊙ (A^T x)), with A [in, r] and B [out, r] on the
 * Stiefel manifold (A^T A = B^T B = I_r), Σ = diag(σ) trainable, s = alpha / r.
 *
 * Design choices:
 * - Parametrisation: A and B are retractions of unconstrained trainable matrices X_A [r, in]
 *   (stored like LoRA's lora_A, A = orth(X_A^T)) and X_B [out, r] (B = orth(X_B)) through the thin
 *   QR decomposition, recomputed in every forward, so any optimizer (AdamW) keeps them exactly
 *   orthonormal with no projection step.
 * - Sign fix: the QR factor is taken with diag(R) > 0, which makes it unique and continuous in X
 *   (full column rank). Gram-Schmidt produces exactly this factor, since R_jj = ||v_j|| > 0.
 * - QR implementation: `tf.linalg.qr` has no gradient on the cpu or wasm backends (its Householder
 *   loop uses `greater`, which has no gradient: "gradient function not found for Greater") and
 *   builds the full [n, n] Q; we use classical Gram-Schmidt with re-orthogonalisation (CGS2, two
 *   projection passes per column) in tfjs ops, O(n r^2) per factor, differentiable on every
 *   backend and orthonormal to float32 precision for the small r used here.
 * - Initialisation: X_A Kaiming-uniform as LoRA's lora_A, X_B Kaiming-uniform of [out, r] (it must
 *   have full rank, so not zero), σ = 0: the model is unchanged at init, and A, B start as random
 *   orthonormal frames (their gradients are zero until σ moves, like LoRA's A while B = 0).
 * - Scale s = alpha / r as LoRA. With orthonormal A, B the singular values of dW are s |σ_i|, so s
 *   only sets the scale of σ's steps relative to LoRA's.
 *
 * Trainable parameters per adapted layer: r (in + out + 1) (X_A, X_B, σ).
 * Mergeable: merge writes W + s B Σ A^T.
 * PEFT export: the update is the plain LoRA lora_A = Σ A^T [r, in], lora_B = B [out, r] with
 * r and lora_alpha unchanged (PEFT has no OrthoGeoLoRA type).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { loraTensorShapes, sumOverTargets } from "./targets.ts";
import { trainableVariable } from "./common.ts";
import { type LoraConfig, LoraLinear, loraSchema } from "./lora.ts";
import { kaimingVariable, loraPairTensors, peftLoraConfig, wrapLoraTargets } from "./lora_variants.ts";
import { adaptedMethod } from "./wrapped.ts";

/**
 * Orthonormalise the rows of x [r, n] (r <= n) by Gram-Schmidt with re-orthogonalisation: the Q
 * of x^T = Q R with diag(R) > 0, returned as Q^T [r, n]. Differentiable tfjs ops only.
 */
export function orthonormalRows(x: tf.Tensor2D): tf.Tensor2D {
  const [r, n] = x.shape;
  let q: tf.Tensor2D | null = null;
  for (let j = 0; j < r; j++) {
    let v = tf.slice(x, [j, 0], [1, n]);
    if (q) {
      for (let pass = 0; pass < 2; pass++) v = tf.sub(v, tf.matMul(tf.matMul(v, q, false, true), q));
    }
    v = tf.div(v, tf.sqrt(tf.sum(tf.square(v))));
    q = q ? tf.concat([q, v], 0) : v;
  }
  return q!;
}

/** A LoRA layer whose factors are retracted onto the Stiefel manifold, with a diagonal core. */
export class OrthoGeoLinear extends LoraLinear {
  /** σ [r]. */
  readonly sigma: tf.Variable;

  /** `a` = X_A [r, in], `b` = X_B [out, r] (unconstrained). */
  constructor(base: LinearModule, a: tf.Variable, b: tf.Variable, sigma: tf.Variable, scale: number) {
    super(base, a, b, scale);
    this.sigma = sigma;
  }

  /** A^T [r, in] and B^T [r, out], each with orthonormal rows. */
  frames(): { at: tf.Tensor2D; bt: tf.Tensor2D } {
    return {
      at: orthonormalRows(this.a as tf.Tensor2D),
      bt: orthonormalRows(tf.transpose(this.b) as tf.Tensor2D),
    };
  }

  override forward(x: tf.Tensor2D): tf.Tensor2D {
    const { at, bt } = this.frames();
    const low = tf.matMul(tf.mul(tf.matMul(x, at, false, true), this.sigma), bt);
    return tf.add(this.base.forward(x), tf.mul(low, this.scale));
  }

  /** Σ A^T [r, in]: the LoRA-equivalent lora_A (caller disposes). */
  scaledAt(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(this.frames().at, tf.reshape(this.sigma, [-1, 1])) as tf.Tensor2D);
  }

  override delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(this.frames().bt, this.scaledAt(), true, false), this.scale) as tf.Tensor2D
    );
  }
}

/** OrthoGeoLoRA: options as LoRA (targets, rank, alpha). */
export const orthogeolora: MethodDefinition<LoraConfig> = {
  name: "orthogeolora",
  description: "LoRA as s*B*Sigma*A^T with A, B kept orthonormal by a differentiable QR retraction",
  schema: loraSchema,
  mergeable: true,
  // X_A [r, in], X_B [out, r], sigma [r]; exported as the plain LoRA pair (Sigma A^T, B).
  contract: {
    testOptions: { rank: 4, alpha: 8, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * (s.in + s.out + 1)),
    peftTensors: (m, c) => loraTensorShapes(m, c.targets, c.rank),
  },
  apply(model, config, ctx) {
    const r = config.rank;
    const { targets, wrapped, restore, vars } = wrapLoraTargets(model, config, (base, name, scale, vars) => {
      const a = kaimingVariable(ctx.rng.fork(`${name}.lora_A`), [r, base.inFeatures]);
      const b = kaimingVariable(ctx.rng.fork(`${name}.lora_B`), [base.outFeatures, r]);
      const sigma = trainableVariable(new Float32Array(r), [r]);
      vars.set(`${name}.lora_A`, a);
      vars.set(`${name}.lora_B`, b);
      vars.set(`${name}.sigma`, sigma);
      return new OrthoGeoLinear(base, a, b, sigma, scale);
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: r }),
      peftExport: () => ({
        config: peftLoraConfig(model.config, targets, r, config.alpha),
        tensors: loraPairTensors(wrapped, (l) => [l.scaledAt(), tf.transpose(l.frames().bt)], model.config),
      }),
    };
  },
};
