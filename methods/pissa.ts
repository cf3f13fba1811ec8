/**
 * PiSSA, principal singular values and singular vectors adaptation (Meng et al., 2024,
 * arXiv:2404.02948).
 *
 * Formula: with the SVD W = U S V^T of the frozen weight [out, in], the adapter is initialised
 * from the top-r triplets and the rest becomes the frozen base:
 *   B0 = U_r sqrt(S_r / s) [out, r],  A0 = sqrt(S_r / s) V_r^T [r, in],  W_res = W - s B0 A0,
 *   y = x W_res^T + s x A^T B^T, s = alpha / r, starting from A = A0, B = B0.
 *
 * Design choices:
 * - Dividing S_r by s (as PEFT's `pissa_init` does) makes s B0 A0 = U_r S_r V_r^T for any alpha;
 *   with the paper's alpha = r (s = 1) it is exactly the paper's A = U_r S_r^{1/2}, B = S_r^{1/2} V_r^T.
 * - Exact SVD (ml-matrix, float64) by default; `--opt niter=K` uses PEFT's fast randomized
 *   `pissa_niter_K` instead (torch.svd_lowrank with K subspace iterations, seeded; lora_init.ts).
 * - W_res is built through ctx.makeFrozenLinear, so under a quantized run it is quantized
 *   (QPiSSA: the principal part stays in full precision in A, B); the model's original weight is
 *   left untouched and comes back on dispose.
 * - Identity at init up to float error: W_res + s B0 A0 = W within ~1e-7 relative (float32
 *   rounding of the residual and of the product), not bit-exact.
 * - deltaWeights() reports the update relative to the original W: s (B A - B0 A0).
 * - PEFT export follows PEFT's PiSSA-to-LoRA conversion (`subtract_mutated_init`): the update
 *   s (B A - B0 A0) is the rank-2r LoRA A' = [A; A0], B' = [B, -B0] with r' = 2r and
 *   lora_alpha' = 2 alpha (same scale), applied to the original, unmodified base model.
 *
 * Trainable parameters per adapted layer: r (in + out), as LoRA.
 * Mergeable: merge writes W_res + s B A = W + s (B A - B0 A0).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { Linear, type LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { loraTensorShapes, sumOverTargets } from "./targets.ts";
import { trainableVariable } from "./common.ts";
import { z } from "zod";
import { LoraLinear, loraSchema } from "./lora.ts";
import { loraInitStart, sketchRng } from "./lora_init.ts";
import { loraPairTensors, peftLoraConfig, wrapLoraTargets } from "./lora_variants.ts";
import { adaptedMethod } from "./wrapped.ts";

/** PiSSA factors of a row-major weight [out, in]: A0 [r, in], B0 [out, r] and the residual. */
export function pissaFactors(
  weight: Float32Array,
  out: number,
  inF: number,
  rank: number,
  scale: number,
): { a: Float32Array; b: Float32Array; residual: Float32Array } {
  const m = new Matrix(out, inF);
  for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) m.set(i, j, weight[i * inF + j]);
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  const u = svd.leftSingularVectors;
  const v = svd.rightSingularVectors;
  const s = svd.diagonal; // descending
  const a = new Float32Array(rank * inF);
  const b = new Float32Array(out * rank);
  const residual = new Float64Array(weight);
  for (let k = 0; k < rank; k++) {
    const root = Math.sqrt(Math.max(0, s[k]) / scale);
    for (let i = 0; i < out; i++) b[i * rank + k] = u.get(i, k) * root;
    for (let j = 0; j < inF; j++) a[k * inF + j] = v.get(j, k) * root;
    for (let i = 0; i < out; i++) {
      const ui = u.get(i, k) * s[k];
      for (let j = 0; j < inF; j++) residual[i * inF + j] -= ui * v.get(j, k);
    }
  }
  return { a, b, residual: Float32Array.from(residual) };
}

/** A PiSSA layer: LoRA on the residual base, remembering its initial factors. */
class PissaLinear extends LoraLinear {
  readonly a0: tf.Tensor2D;
  readonly b0: tf.Tensor2D;

  constructor(
    base: LinearModule,
    a: tf.Variable,
    b: tf.Variable,
    scale: number,
    a0: tf.Tensor2D,
    b0: tf.Tensor2D,
  ) {
    super(base, a, b, scale);
    this.a0 = a0;
    this.b0 = b0;
  }

  /** s (B A - B0 A0): the update relative to the original weight. */
  update(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.sub(this.delta(), tf.mul(tf.matMul(this.b0, this.a0), this.scale)) as tf.Tensor2D
    );
  }
}

/** PiSSA options: LoRA's plus `niter` (absent: exact SVD, so default runs parse as before). */
export const pissaSchema = loraSchema.extend({
  /** PEFT's `pissa_niter_K`: randomized SVD with K subspace iterations. */
  niter: z.number().int().nonnegative().optional(),
}).strict();

/** PiSSA options after defaults. */
export type PissaConfig = z.infer<typeof pissaSchema>;

/** PiSSA: options as LoRA (targets, rank, alpha) plus `niter`. */
export const pissa: MethodDefinition<PissaConfig> = {
  name: "pissa",
  description:
    "LoRA initialised from the top-r singular triplets of W, the residual frozen (Meng et al. 2024)",
  schema: pissaSchema,
  mergeable: true,
  // LoRA's r (in + out); exported as PEFT's rank-2r conversion [A; A0], [B, -B0]. Identity holds up
  // to the float32 rounding of W_res + s B0 A0 (module doc).
  contract: {
    testOptions: { rank: 4, alpha: 8, targets: "all-linear" },
    identityAtInit: true,
    identityTolerance: 1e-5,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * (s.in + s.out)),
    peftTensors: (m, c) => loraTensorShapes(m, c.targets, 2 * c.rank),
  },
  apply(model, config, ctx) {
    const r = config.rank;
    const owned: tf.Tensor[] = [];
    const { targets, wrapped, restore, vars } = wrapLoraTargets(model, config, (base, name, scale, vars) => {
      const [out, inF] = [base.outFeatures, base.inFeatures];
      const w = tf.tidy(() => base.denseWeight().dataSync() as Float32Array);
      const f = config.niter === undefined ? pissaFactors(w, out, inF, r, scale) : loraInitStart(
        `pissa_niter_${config.niter}`,
        w,
        out,
        inF,
        r,
        scale,
        sketchRng(name),
      );
      const res = tf.tensor2d(f.residual, [out, inF]);
      const residual = ctx.makeFrozenLinear(name, res, base.bias);
      res.dispose();
      if (residual instanceof Linear) owned.push(residual.weight);
      const a0 = tf.tensor2d(f.a, [r, inF]);
      const b0 = tf.tensor2d(f.b, [out, r]);
      owned.push(a0, b0);
      vars.set(`${name}.lora_A`, trainableVariable(f.a, [r, inF]));
      vars.set(`${name}.lora_B`, trainableVariable(f.b, [out, r]));
      return new PissaLinear(
        residual,
        vars.get(`${name}.lora_A`)!,
        vars.get(`${name}.lora_B`)!,
        scale,
        a0,
        b0,
      );
    });
    return {
      ...adaptedMethod({
        model,
        ctx,
        vars,
        wrapped,
        restore,
        owned,
        nominalRank: r,
        deltaWeights: () => new Map([...wrapped].map(([n, l]) => [n, l.update()])),
      }),
      peftExport: () => ({
        config: peftLoraConfig(model.config, targets, 2 * r, 2 * config.alpha),
        tensors: loraPairTensors(
          wrapped,
          (l) => [tf.concat([l.a, l.a0], 0), tf.concat([l.b, tf.neg(l.b0)], 1)],
          model.config,
        ),
      }),
    };
  },
};
