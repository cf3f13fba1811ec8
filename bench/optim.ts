/**
 * AdamW (Loshchilov & Hutter) with global-norm gradient clipping, and learning-rate schedules
 * with linear warmup followed by cosine or linear decay.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import { ADAMW, type AdamWAttrs, hasKernel, runFused, SUM_SQUARES } from "../models/native_kernels.ts";

/** AdamW hyperparameters. */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, applied as w -= lr * wd * w (default 0). */
  weightDecay?: number;
  /** Clip the global gradient norm to this value (0 or undefined: no clipping). */
  clipNorm?: number;
}

/**
 * AdamW over a fixed list of variables. Moments are kept as tfjs variables (they are the
 * optimizer state counted in memory reports). Update for each parameter w with gradient g:
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd w).
 */
export class AdamW {
  readonly vars: tf.Variable[];
  readonly options: Required<AdamWOptions>;
  #m: tf.Variable[];
  #v: tf.Variable[];
  #step = 0;

  constructor(vars: tf.Variable[], options: AdamWOptions = {}) {
    this.vars = vars;
    this.options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 0, ...options };
    this.#m = vars.map((v) => variableOf(() => tf.zerosLike(v), false));
    this.#v = vars.map((v) => variableOf(() => tf.zerosLike(v), false));
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /** Bytes of optimizer state (two fp32 moments per trainable value). */
  get stateBytes(): number {
    return this.#m.reduce((s, m) => s + 8 * m.size, 0);
  }

  /**
   * Apply one update with learning rate `lr` from gradients keyed like `vars` (by index).
   * Returns the global gradient norm before clipping (a scalar tensor the caller disposes).
   */
  apply(grads: tf.Tensor[], lr: number): tf.Scalar {
    this.#step++;
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.options;
    const t = this.#step;
    // The native backend's fused kernels (when built) run each variable's update as one pass.
    const fused = hasKernel(ADAMW);
    return tf.tidy(() => {
      const squares = grads.map((g) =>
        fused ? runFused(SUM_SQUARES, { x: g }) as tf.Tensor : tf.sum(tf.square(g))
      );
      const norm = tf.sqrt(tf.addN(squares)) as tf.Scalar;
      let scale: tf.Scalar | number = 1;
      if (clipNorm > 0) scale = tf.minimum(1, tf.div(clipNorm, tf.add(norm, 1e-6))) as tf.Scalar;
      const c1 = 1 - Math.pow(beta1, t);
      const c2 = 1 - Math.pow(beta2, t);
      if (fused) {
        const attrs: AdamWAttrs = { lr, beta1, beta2, eps, weightDecay, c1, c2 };
        const scaleTensor = typeof scale === "number" ? tf.scalar(scale) : scale;
        for (let i = 0; i < this.vars.length; i++) {
          const inputs = {
            param: this.vars[i],
            grad: grads[i],
            m: this.#m[i],
            v: this.#v[i],
            scale: scaleTensor,
          };
          const [w, m, v] = runFused(ADAMW, inputs, attrs) as tf.Tensor[];
          this.#m[i].assign(m);
          this.#v[i].assign(v);
          this.vars[i].assign(w);
        }
        return tf.keep(norm);
      }
      for (let i = 0; i < this.vars.length; i++) {
        const g = scale === 1 ? grads[i] : tf.mul(grads[i], scale);
        const m = tf.add(tf.mul(this.#m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.#v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.#m[i].assign(m);
        this.#v[i].assign(v);
        let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        if (weightDecay > 0) update = tf.add(update, tf.mul(this.vars[i], weightDecay));
        this.vars[i].assign(tf.sub(this.vars[i], tf.mul(update, lr)));
      }
      return tf.keep(norm);
    });
  }

  /** Free the optimizer state. */
  dispose(): void {
    tf.dispose([...this.#m, ...this.#v]);
  }
}

/** Learning-rate schedule options. */
export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Total number of updates. */
  totalSteps: number;
  /** Linear warmup updates from lr/warmup to lr (default 0). */
  warmupSteps?: number;
  /** Decay after warmup (default cosine). */
  decay?: "cosine" | "linear" | "constant";
  /** Final learning rate as a fraction of the peak (default 0). */
  minRatio?: number;
}

/** Learning rate at update `step` (0-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  const warmup = o.warmupSteps ?? 0;
  if (step < warmup) return (o.lr * (step + 1)) / warmup;
  const decaySteps = Math.max(1, o.totalSteps - warmup);
  const progress = Math.min(1, (step - warmup) / decaySteps);
  const min = o.minRatio ?? 0;
  const decay = o.decay ?? "cosine";
  const factor = decay === "constant"
    ? 1
    : decay === "linear"
    ? 1 - progress
    : 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (min + (1 - min) * factor);
}
