/**
 * LoKr: low-rank Kronecker product (LyCORIS; Yeh et al. 2024, "Navigating text-to-image
 * customization"; Hugging Face PEFT `LoKrConfig`).
 *
 * Formula: y = W x + s kron(W1, W2) x, s = alpha / r (PEFT's `scaling`), computed with the vec
 * trick (kron.ts), never materialising the [out, in] update in the forward pass.
 *
 * Factor sizes (PEFT `update_layer`): out = outL outK and in = inM inN, each split by
 * `factorization(dim, decomposeFactor)` (`decomposeFactor` -1: the divisor pair closest to sqrt,
 * smaller factor first; a positive value that divides the dimension is used as the first factor).
 * W1 [outL, inM] is the small full matrix; W2 [outK, inN] is low-rank, W2 = B A with B [outK, r],
 * A [r, inN], except when r >= max(outK, inN) / 2, where PEFT keeps W2 as one full matrix
 * (the factorisation would not save parameters). Trainable parameters per adapted layer:
 * outL inM + r (outK + inN) (low-rank W2) or outL inM + outK inN (full W2).
 *
 * Initialisation (PEFT `reset_adapter_parameters`): W1 zeros, W2 (or B and A) Kaiming-uniform
 * (a = sqrt(5)), so the update is zero at init and the adapted model equals the frozen one.
 * PEFT names: W1 = lokr_w1, B = lokr_w2_a, A = lokr_w2_b (or W2 = lokr_w2).
 *
 * Mergeable: W' = W + s kron(W1, W2). Design choices: LoRA's options and defaults (`targets` q+v,
 * `rank` 8, `alpha` 16; PEFT's defaults are r = alpha = 8); no `decompose_both` (W1 stays full, as
 * PEFT's default), no rank/module dropout, no Conv variants.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { layerFactors, wrapLinears } from "./common.ts";
import { loraSchema } from "./lora.ts";
import { decomposeFactorOption, factorization, kronDense, kronMatMul, kronShape } from "./kron.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** LoKr options: LoRA's plus `decomposeFactor`. */
export const lokrSchema = loraSchema.extend({
  /** Kronecker split of each dimension: -1 closest to sqrt, or the size of the first factor. */
  decomposeFactor: decomposeFactorOption,
});

/** LoKr options after defaults. */
export type LokrConfig = z.infer<typeof lokrSchema>;

/** A frozen linear layer plus s kron(W1, W2), W2 given by its factors (`[W2]` or `[B, A]`). */
export class KronLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    readonly w1: tf.Variable,
    readonly w2: tf.Variable[],
    readonly scale: number,
  ) {
    super(base);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const kron = kronMatMul(x, this.w1 as tf.Tensor2D, this.w2 as tf.Tensor2D[]);
    return tf.add(this.base.forward(x), tf.mul(kron, this.scale));
  }

  /** The right factor W2 as one matrix. */
  right(): tf.Tensor2D {
    return this.w2.length === 1 ? this.w2[0] as tf.Tensor2D : tf.matMul(this.w2[0], this.w2[1]);
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(kronDense(this.w1 as tf.Tensor2D, this.right()), this.scale));
  }
}

/** LoKr. */
export const lokr: MethodDefinition<LokrConfig> = {
  name: "lokr",
  description: "Kronecker update s*kron(W1, B A), s = alpha/r (LyCORIS / PEFT LoKr)",
  schema: lokrSchema,
  mergeable: true,
  // PEFT `LoKrLayer.update_layer`: W1 [outL, inM]; W2 full [outK, inN] when r >= max(outK, inN) / 2,
  // else lokr_w2_a [outK, r] and lokr_w2_b [r, inN]. Rank 2 on the tiny model takes both branches.
  contract: {
    testOptions: { rank: 2, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const [outL, outK] = factorization(s.out, c.decomposeFactor);
        const [inM, inN] = factorization(s.in, c.decomposeFactor);
        const right = c.rank >= Math.max(outK, inN) / 2 ? outK * inN : c.rank * (outK + inN);
        return outL * inM + right;
      }),
  },
  apply: (model, config, ctx) => {
    const r = config.rank;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, selectTargets(model, config.targets), (base, name) => {
      const { left, right } = kronShape(base.outFeatures, base.inFeatures, config.decomposeFactor);
      const { zeros, kaiming } = layerFactors(vars, name, ctx.rng);
      const w1 = zeros("lokr_w1", left);
      const fullRight = r >= Math.max(...right) / 2;
      const w2 = fullRight
        ? [kaiming("lokr_w2", right)]
        : [kaiming("lokr_w2_a", [right[0], r]), kaiming("lokr_w2_b", [r, right[1]])];
      return new KronLinear(base, w1, w2, config.alpha / r);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: r });
  },
};
