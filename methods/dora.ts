/**
 * DoRA, weight-decomposed low-rank adaptation (Liu et al., 2024, arXiv:2402.09353).
 *
 * Formula: W' = m ⊙ (W + s B A) / ||W + s B A||_c, i.e. for each output unit i (row i of our
 * [out, in] weight) W'_i = m_i (W_i + s (B A)_i) / ||W_i + s (B A)_i||_2, so the forward is
 * y = (m / n) ⊙ (x W^T + s x A^T B^T) + bias with n the detached row norms.
 *
 * Design choices:
 * - Norm axis: the paper's ||.||_c is the norm of each column of W in R^{d x k} (d = in), one
 *   per output unit; in PyTorch's [out, in] layout that is the norm of each row, over the input
 *   dimension. PEFT does the same (`torch.linalg.norm(W + s*lora_weight, dim=1)` in
 *   `DoraLinearLayer.get_weight_norm`); the magnitude `lora_magnitude_vector` has shape [out].
 * - Initialisation: A Kaiming-uniform and B = 0 as LoRA; m = ||W||_c, the norms of the frozen
 *   (dequantized) weight, so W' = W and the model is unchanged at init.
 * - Detached norm (paper Sec. 4.3, PEFT `weight_norm.detach()`): n is treated as a constant in
 *   backpropagation. tfjs has no stopGradient, so n is computed inside `tf.customGrad` with a zero
 *   gradient ({@link detached}). n is recomputed from the current A, B at every forward.
 * - Cheap norm: n_i^2 = ||W_i||^2 + 2 s <W_i, (B A)_i> + s^2 ||(B A)_i||^2, with ||W_i||^2 cached at
 *   init, <W_i, (B A)_i> = sum_k B_ik (W A^T)_ik where W A^T comes from the base layer's own
 *   forward on the r rows of A (no dense or dequantized copy of W per step), and
 *   ||(B A)_i||^2 = (B (A A^T) B^T)_ii. n^2 is floored at 1e-24 so an all-zero row of W gives no NaN.
 * - Scale s = alpha / r as LoRA (PEFT's default when `use_rslora` is false).
 *
 * Trainable parameters per adapted layer: r (in + out) + out.
 * Mergeable: W' is a plain weight; merge writes (m / n) ⊙ (W + s B A) through ctx.makeFrozenLinear.
 * PEFT export: a `LoraConfig` with `use_dora: true`, tensors `lora_A.weight`, `lora_B.weight` and
 * `lora_magnitude_vector` [out] (PEFT's saved name: it strips the `.weight` of the DoRA module).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { loraTensorShapes, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, trainableVariable } from "./common.ts";
import { type LoraConfig, LoraLinear, loraPeftTensors, loraSchema } from "./lora.ts";
import { detached, kaimingVariable, peftLoraConfig, wrapLoraTargets } from "./lora_variants.ts";
import { outputRows } from "./peft_export.ts";
import { adaptedMethod } from "./wrapped.ts";

/** A LoRA layer with DoRA's magnitude/direction decomposition. */
export class DoraLinear extends LoraLinear {
  /** Magnitude m [out]. */
  readonly magnitude: tf.Variable;
  /** ||W_i||^2 [out] of the frozen weight. */
  readonly weightNorm2: tf.Tensor1D;
  readonly #norm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor1D;

  /** Wrap `base`; m starts at the row norms of its (dequantized) weight. */
  constructor(base: LinearModule, a: tf.Variable, b: tf.Variable, scale: number) {
    super(base, a, b, scale);
    this.weightNorm2 = tf.tidy(() => tf.sum(tf.square(base.denseWeight()), 1) as tf.Tensor1D);
    this.magnitude = tf.tidy(() => tf.variable(tf.sqrt(this.weightNorm2), true));
    this.#norm = detached((a, b) => this.#rowNorms(a as tf.Tensor2D, b as tf.Tensor2D));
  }

  /** Row norms ||W_i + s (B A)_i|| [out], by the expansion documented on the module. */
  #rowNorms(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
    const s = this.scale;
    let wat = this.base.forward(a); // [r, out] = (W A^T)^T (+ bias)
    if (this.base.bias) wat = tf.sub(wat, this.base.bias);
    const cross = tf.sum(tf.mul(b, tf.transpose(wat)), 1);
    const gram = tf.matMul(a, a, false, true);
    const quad = tf.sum(tf.mul(tf.matMul(b, gram), b), 1);
    const n2 = tf.add(this.weightNorm2, tf.add(tf.mul(cross, 2 * s), tf.mul(quad, s * s)));
    return tf.sqrt(tf.maximum(n2, 1e-24)) as tf.Tensor1D;
  }

  /** m / n [out] with n detached. */
  ratio(): tf.Tensor1D {
    return tf.div(this.magnitude, this.#norm(this.a, this.b)) as tf.Tensor1D;
  }

  override forward(x: tf.Tensor2D): tf.Tensor2D {
    let y = this.base.forward(x);
    if (this.bias) y = tf.sub(y, this.bias);
    const low = tf.matMul(tf.matMul(x, this.a, false, true), this.b, false, true);
    const out = tf.mul(tf.add(y, tf.mul(low, this.scale)), this.ratio()) as tf.Tensor2D;
    return this.bias ? tf.add(out, this.bias) : out;
  }

  /** W' - W = (m/n - 1) ⊙ W + (m/n) ⊙ s B A, row-wise. */
  override delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const ratio = tf.reshape(this.ratio(), [-1, 1]);
      const w = this.base.denseWeight();
      return tf.add(tf.mul(w, tf.sub(ratio, 1)), tf.mul(super.delta(), ratio)) as tf.Tensor2D;
    });
  }
}

/** DoRA: options as LoRA (targets, rank, alpha). */
export const dora: MethodDefinition<LoraConfig> = {
  name: "dora",
  description:
    "weight-decomposed LoRA: magnitude m times the normalised direction W + s*B*A (Liu et al. 2024)",
  schema: loraSchema,
  mergeable: true,
  // LoRA's A, B plus PEFT's lora_magnitude_vector [out] per target.
  contract: {
    testOptions: { rank: 4, alpha: 8, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * (s.in + s.out) + s.out),
    peftTensors: (m, c) => {
      const out = loraTensorShapes(m, c.targets, c.rank);
      for (const [name, s] of targetShapes(m, c.targets)) out.set(`${name}.lora_magnitude_vector`, [s.out]);
      return out;
    },
  },
  apply(model, config, ctx) {
    const norms: tf.Tensor[] = [];
    const { targets, wrapped, restore, vars } = wrapLoraTargets(model, config, (base, name, scale, vars) => {
      const a = kaimingVariable(ctx.rng.fork(`${name}.lora_A`), [config.rank, base.inFeatures]);
      const b = trainableVariable(new Float32Array(base.outFeatures * config.rank), [
        base.outFeatures,
        config.rank,
      ]);
      const layer = new DoraLinear(base, a, b, scale);
      norms.push(layer.weightNorm2);
      vars.set(`${name}.lora_A`, a);
      vars.set(`${name}.lora_B`, b);
      vars.set(`${name}.lora_magnitude_vector`, layer.magnitude);
      return layer;
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, owned: norms, nominalRank: config.rank }),
      peftExport: () => {
        const tensors = loraPeftTensors(wrapped, model.config);
        for (const [name, l] of wrapped) {
          // One magnitude per output row: permuted with the rows (q/k of llama2.c bases).
          tensors.set(
            `${peftModuleName(name)}.lora_magnitude_vector`,
            outputRows(name, l.magnitude, model.config),
          );
        }
        return {
          config: peftLoraConfig(model.config, targets, config.rank, config.alpha, { use_dora: true }),
          tensors,
        };
      },
    };
  },
};
