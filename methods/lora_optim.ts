/**
 * LoRA's optimizer options, exposed through `AppliedMethod.makeOptimizer` so the harness is unchanged:
 * - LoRA+ (Hayou et al. 2024; PEFT `create_loraplus_optimizer`): lora_B learns at
 *   lr * `loraPlusLrRatio`, lora_A at lr. PEFT's function has no default ratio (a required
 *   argument); its docs and the paper use 16. PEFT gives every group `loraplus_weight_decay`
 *   (default 0); here all groups keep the run's weight decay.
 * - LoRA-FA (Zhang et al. 2023; PEFT `create_lorafa_optimizer` / `LoraFAOptimizer`): lora_A is
 *   frozen (not trainable) and B's gradient is replaced by g_B (A A^T + 1e-8 I)^{-1} / s^2 (s the
 *   LoRA scale) before the Adam update, so B's step follows the full-weight gradient's projection.
 *   The Adam arithmetic is this harness's AdamW (eps 1e-8 added after the bias correction) rather
 *   than LoraFAOptimizer's (eps 1e-6 before it).
 * Gradients are clipped by their global norm first, as AdamW does.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { AppliedMethod, Optimizer, OptimizerOptions } from "./types.ts";
import {
  AdamMoments,
  type AdamOptions,
  adamOptions,
  biasCorrections,
  clipFactor,
  decoupledStep,
  globalNorm,
} from "./optim.ts";
import { batchInverse } from "./orthogonal.ts";

/** AdamW whose variables each have a learning-rate multiplier and an optional gradient transform. */
export class GroupedAdamW implements Optimizer {
  readonly options: AdamOptions;
  readonly #moments: AdamMoments[];
  #step = 0;

  constructor(
    readonly vars: tf.Variable[],
    /** Learning-rate multiplier per variable. */
    readonly lrScale: number[],
    options: OptimizerOptions = {},
    /** Gradient transform per variable (after clipping), or null. */
    readonly transforms: ((g: tf.Tensor) => tf.Tensor)[] | null = null,
  ) {
    this.options = adamOptions(options);
    this.#moments = vars.map((v) => new AdamMoments(v.shape));
  }

  get stateBytes(): number {
    return this.#moments.reduce((s, m) => s + 4 * m.size, 0);
  }

  apply(grads: tf.Tensor[], lr: number): tf.Scalar {
    this.#step++;
    const o = this.options;
    const c = biasCorrections(o, this.#step);
    return tf.tidy(() => {
      const norm = globalNorm(grads);
      const scale = clipFactor(norm, o.clipNorm);
      for (let i = 0; i < this.vars.length; i++) {
        let g = scale === 1 ? grads[i] : tf.mul(grads[i], scale);
        if (this.transforms?.[i]) g = this.transforms[i](g);
        decoupledStep(this.vars[i], this.#moments[i].update(g, o, c), lr * this.lrScale[i], o.weightDecay);
      }
      return tf.keep(norm);
    });
  }

  dispose(): void {
    for (const m of this.#moments) m.dispose();
  }
}

/** LoRA-FA's gradient for B [out, r]: g_B (A A^T + 1e-8 I)^{-1} / s^2 (PEFT `LoraFAOptimizer.step`). */
export function loraFaGradient(gB: tf.Tensor, a: tf.Tensor, scale: number): tf.Tensor {
  return tf.tidy(() => {
    const r = a.shape[0];
    const aat = tf.add(tf.matMul(a as tf.Tensor2D, a as tf.Tensor2D, false, true), tf.mul(tf.eye(r), 1e-8));
    const inv = tf.squeeze(batchInverse(tf.expandDims(aat, 0) as tf.Tensor3D), [0]) as tf.Tensor2D;
    return tf.div(tf.matMul(gB as tf.Tensor2D, inv), scale * scale);
  });
}

/** LoRA's optimizer options (absent: the harness's AdamW over A and B). */
export interface LoraOptimOptions {
  loraPlusLrRatio?: number;
  loraFa?: boolean;
}

/**
 * The `trainable` list and `makeOptimizer` of LoRA layers (A, B pairs in layer order) under
 * LoRA+ and/or LoRA-FA; empty when neither is set.
 */
export function loraOptimizerParts(
  layers: { a: tf.Variable; b: tf.Variable }[],
  scale: number,
  o: LoraOptimOptions,
): Partial<AppliedMethod> {
  if (o.loraPlusLrRatio === undefined && !o.loraFa) return {};
  const ratio = o.loraPlusLrRatio ?? 1;
  const vars: tf.Variable[] = [];
  const lrScale: number[] = [];
  const transforms: ((g: tf.Tensor) => tf.Tensor)[] = [];
  for (const l of layers) {
    if (!o.loraFa) {
      vars.push(l.a);
      lrScale.push(1);
      transforms.push((g) => g);
    }
    vars.push(l.b);
    lrScale.push(ratio);
    transforms.push(o.loraFa ? (g) => loraFaGradient(g, l.a, scale) : (g) => g);
  }
  return {
    trainable: vars,
    makeOptimizer: (options) => new GroupedAdamW(vars, lrScale, options, o.loraFa ? transforms : null),
  };
}
