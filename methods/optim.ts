/**
 * The Adam core (Kingma & Ba; decoupled weight decay of Loshchilov & Hutter) that AdamW and GaLore
 * share: option defaults, the global gradient norm and its clipping factor, bias corrections, the
 * moment update and the decoupled step. Per tensor with gradient g at update t:
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
 *   n = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),  w -= lr (u + wd w)
 * with u = n for AdamW and u = alpha P n (projected back) for GaLore. {@link AdamW} is the
 * harness's optimizer; on the native backend with the fused kernels built it runs each variable's
 * update as one C pass.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import { ADAMW, type AdamWAttrs, hasKernel, runFused, SUM_SQUARES } from "../models/native_kernels.ts";
import type { Optimizer, OptimizerOptions } from "./types.ts";

/** Adam hyperparameters with their defaults filled in. */
export type AdamOptions = Required<OptimizerOptions>;

/** Fill the defaults: b1 0.9, b2 0.999, eps 1e-8, no weight decay, no clipping. */
export function adamOptions(options: OptimizerOptions = {}): AdamOptions {
  return { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 0, ...options };
}

/** Global L2 norm of a list of gradients (inside a tidy), optionally from fused sums of squares. */
export function globalNorm(grads: tf.Tensor[], fusedSquares = false): tf.Scalar {
  const squares = grads.map((g) =>
    fusedSquares ? runFused(SUM_SQUARES, { x: g }) as tf.Tensor : tf.sum(tf.square(g))
  );
  return tf.sqrt(tf.addN(squares)) as tf.Scalar;
}

/** The factor min(1, clipNorm / (norm + 1e-6)) that clips to `clipNorm`, or 1 without clipping. */
export function clipFactor(norm: tf.Scalar, clipNorm: number): tf.Scalar | number {
  return clipNorm > 0 ? tf.minimum(1, tf.div(clipNorm, tf.add(norm, 1e-6))) as tf.Scalar : 1;
}

/** Bias corrections 1 - b1^t and 1 - b2^t after t updates. */
export function biasCorrections(o: AdamOptions, t: number): { c1: number; c2: number } {
  return { c1: 1 - Math.pow(o.beta1, t), c2: 1 - Math.pow(o.beta2, t) };
}

/** Zero-initialised first and second moments of a given shape, as non-trainable variables. */
export class AdamMoments {
  readonly m: tf.Variable;
  readonly v: tf.Variable;

  constructor(shape: number[]) {
    this.m = variableOf(() => tf.zeros(shape), false);
    this.v = variableOf(() => tf.zeros(shape), false);
  }

  /** Number of moment values (both moments). */
  get size(): number {
    return this.m.size + this.v.size;
  }

  /** Update the moments with gradient g and return the bias-corrected direction n (inside a tidy). */
  update(g: tf.Tensor, o: AdamOptions, c: { c1: number; c2: number }): tf.Tensor {
    const m = tf.add(tf.mul(this.m, o.beta1), tf.mul(g, 1 - o.beta1));
    const v = tf.add(tf.mul(this.v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
    this.m.assign(m);
    this.v.assign(v);
    return tf.div(tf.div(m, c.c1), tf.add(tf.sqrt(tf.div(v, c.c2)), o.eps));
  }

  dispose(): void {
    tf.dispose([this.m, this.v]);
  }
}

/** The decoupled step w -= lr (u + wd w) (inside a tidy). */
export function decoupledStep(w: tf.Variable, u: tf.Tensor, lr: number, weightDecay: number): void {
  const update = weightDecay > 0 ? tf.add(u, tf.mul(w, weightDecay)) : u;
  w.assign(tf.sub(w, tf.mul(update, lr)));
}

/** AdamW over a fixed list of variables, with global-norm gradient clipping. */
export class AdamW implements Optimizer {
  readonly vars: tf.Variable[];
  readonly options: AdamOptions;
  #moments: AdamMoments[];
  #step = 0;

  constructor(vars: tf.Variable[], options: OptimizerOptions = {}) {
    this.vars = vars;
    this.options = adamOptions(options);
    this.#moments = vars.map((v) => new AdamMoments(v.shape));
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /** Bytes of optimizer state (two fp32 moments per trainable value). */
  get stateBytes(): number {
    return this.#moments.reduce((s, m) => s + 4 * m.size, 0);
  }

  /**
   * Apply one update with learning rate `lr` from gradients keyed like `vars` (by index).
   * Returns the global gradient norm before clipping (a scalar tensor the caller disposes).
   */
  apply(grads: tf.Tensor[], lr: number): tf.Scalar {
    this.#step++;
    const o = this.options;
    const c = biasCorrections(o, this.#step);
    // The native backend's fused kernels (when built) run each variable's update as one pass.
    const fused = hasKernel(ADAMW);
    return tf.tidy(() => {
      const norm = globalNorm(grads, fused);
      const scale = clipFactor(norm, o.clipNorm);
      if (fused) {
        const attrs: AdamWAttrs = {
          lr,
          beta1: o.beta1,
          beta2: o.beta2,
          eps: o.eps,
          weightDecay: o.weightDecay,
          ...c,
        };
        const scaleTensor = typeof scale === "number" ? tf.scalar(scale) : scale;
        for (let i = 0; i < this.vars.length; i++) {
          const { m, v } = this.#moments[i];
          const inputs = { param: this.vars[i], grad: grads[i], m, v, scale: scaleTensor };
          const [w, m1, v1] = runFused(ADAMW, inputs, attrs) as tf.Tensor[];
          m.assign(m1);
          v.assign(v1);
          this.vars[i].assign(w);
        }
        return tf.keep(norm);
      }
      for (let i = 0; i < this.vars.length; i++) {
        const g = scale === 1 ? grads[i] : tf.mul(grads[i], scale);
        decoupledStep(this.vars[i], this.#moments[i].update(g, o, c), lr, o.weightDecay);
      }
      return tf.keep(norm);
    });
  }

  /** Free the optimizer state. */
  dispose(): void {
    for (const m of this.#moments) m.dispose();
  }
}
