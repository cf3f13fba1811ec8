/**
 * GaLore (Zhao et al., 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
 * Projection"), following the authors' GaLore projector.
 *
 * What trains: the full weights W [m, n] of the target linears (set trainable while applied; the
 * flags are restored on dispose). Nothing is added to the model: the saving is in the optimizer
 * ({@link GaLoreOptimizer}), provided through `AppliedMethod.makeOptimizer`.
 *
 * Formula, per weight with gradient G [m, n] (clipped by global norm first, like AdamW), rank r:
 *   m >= n: P [n, r] = top-r right singular vectors of G, R = G P [m, r];
 *   m < n:  P [m, r] = top-r left singular vectors of G,  R = P^T G [r, n];
 *   N = Adam(R) (bias-corrected moments of R),  W -= lr (alpha P N  (or alpha N P^T)  + wd W),
 * alpha = `scale`, P recomputed from the current gradient every `updateProjGap` updates.
 *
 * Initialisation: W starts as the frozen model's weight (the model is unchanged at init), the Adam
 * moments at zero; P comes from the first gradient.
 *
 * Trainable parameters: the targets' full sizes. Optimizer state: 2 r max(m, n) moment values plus
 * r min(m, n) projection values per weight, in fp32: stateBytes = 4 (2 r max(m, n) + r min(m, n))
 * summed over the targets (AdamW would hold 8 m n bytes).
 * Not "mergeable" as an adapter: the weights are trained in place, so merge() is a no-op and
 * state() holds the trained target weights.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import { SingularValueDecomposition } from "ml-matrix";
import { Linear } from "../models/linear.ts";
import type { MethodDefinition, Optimizer, OptimizerOptions } from "./types.ts";
import {
  AdamMoments,
  type AdamOptions,
  adamOptions,
  biasCorrections,
  clipFactor,
  decoupledStep,
  globalNorm,
} from "./optim.ts";
import { inPlaceMethod } from "./common.ts";
import { checkRank } from "./lora.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { toMatrix } from "./diagnostics/linalg.ts";

/** GaLore options. */
export const galoreSchema = z.object({
  /**
   * Target preset or pattern (see targets.ts); all-linear by default, as GaLore projects every
   * attention and MLP matrix.
   */
  targets: z.string().default("all-linear"),
  /**
   * Rank r of the gradient projection, at most min(m, n): 32 so it fits the embedded model's 64-wide
   * k/v projections (the paper used 128 for its smallest model).
   */
  rank: z.number().int().positive().default(32),
  /** Updates between projection refreshes (the paper's T, 200). */
  updateProjGap: z.number().int().positive().default(200),
  /** Scale alpha of the projected-back update (the paper's 0.25). */
  scale: z.number().positive().default(0.25),
}).strict();

/** GaLore options after defaults. */
export type GaloreConfig = z.infer<typeof galoreSchema>;

/**
 * Top-r singular vectors of a gradient [m, n]: the left ones [m, r] when `left`, else the right ones
 * [n, r]. The SVD is exact (ml-matrix, thin, on the CPU in float64), as GaLore's torch.linalg.svd; it
 * costs O(m n min(m, n)) per weight once every T steps, the price of an exact projection.
 */
export function topSingularVectors(g: tf.Tensor2D, r: number, left: boolean): tf.Tensor2D {
  const [m, n] = g.shape;
  const svd = new SingularValueDecomposition(toMatrix(Float64Array.from(g.dataSync()), m, n), {
    autoTranspose: true,
    computeLeftSingularVectors: left,
    computeRightSingularVectors: !left,
  });
  const vectors = left ? svd.leftSingularVectors : svd.rightSingularVectors;
  const rows = left ? m : n;
  const out = new Float32Array(rows * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) out[i * r + j] = vectors.get(i, j);
  return tf.tensor2d(out, [rows, r]);
}

/**
 * The GaLore optimizer over 2-D variables, following GaLore's projector. Per weight with gradient
 * G [m, n], after clipping all gradients by global norm like AdamW:
 * - side: for m >= n (rows not fewer than columns) the right projection P [n, r] and R = G P [m, r];
 *   otherwise the left one, P [m, r] and R = P^T G [r, n] -- the projected gradient always has r
 *   times the larger side;
 * - P is recomputed from the current gradient every `updateProjGap` updates (the paper's T), at
 *   updates 0, T, 2T, ...; the Adam moments are kept across refreshes, as GaLore does;
 * - Adam on R: M = b1 M + (1 - b1) R, V = b2 V + (1 - b2) R^2,
 *   N = (M / (1 - b1^t)) / (sqrt(V / (1 - b2^t)) + eps);
 * - update W -= lr (alpha P N  (or alpha N P^T)  + wd W), alpha = `scale`, decoupled weight decay
 *   on the full weight.
 */
export class GaLoreOptimizer implements Optimizer {
  readonly vars: tf.Variable[];
  readonly rank: number;
  readonly updateProjGap: number;
  readonly scale: number;
  readonly options: AdamOptions;
  /** Projection side per variable: left (P [m, r]) when m < n, else right (P [n, r]). */
  readonly left: boolean[];
  #moments: AdamMoments[];
  #p: (tf.Tensor2D | null)[];
  #step = 0;
  /** Number of projection refreshes so far. */
  refreshes = 0;

  constructor(vars: tf.Variable[], config: Omit<GaloreConfig, "targets">, options: OptimizerOptions = {}) {
    this.vars = vars;
    this.rank = config.rank;
    this.updateProjGap = config.updateProjGap;
    this.scale = config.scale;
    this.options = adamOptions(options);
    for (const v of vars) {
      if (v.rank !== 2) throw new Error(`GaLore projects 2-D weights only, got shape [${v.shape}]`);
      if (this.rank > Math.min(...v.shape)) {
        throw new Error(
          `--rank ${this.rank} is impossible for a [${v.shape}] weight: at most ${Math.min(...v.shape)}`,
        );
      }
    }
    this.left = vars.map((v) => v.shape[0]! < v.shape[1]!);
    const projected = (i: number): [number, number] =>
      this.left[i] ? [this.rank, vars[i].shape[1]!] : [vars[i].shape[0]!, this.rank];
    this.#moments = vars.map((_, i) => new AdamMoments(projected(i)));
    this.#p = vars.map(() => null);
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /** The current projection of variable i (null before the first update). */
  projection(i: number): tf.Tensor2D | null {
    return this.#p[i];
  }

  /** Shapes of the Adam moments (projected: [r, n] or [m, r]). */
  momentShapes(): number[][] {
    return this.#moments.map((m) => [...m.m.shape]);
  }

  /** fp32 bytes of moments and projections: 4 (2 r max(m, n) + r min(m, n)) per weight. */
  get stateBytes(): number {
    return this.vars.reduce(
      (s, v, i) => s + 4 * (this.#moments[i].size + this.rank * Math.min(...v.shape)),
      0,
    );
  }

  apply(grads: tf.Tensor[], lr: number): tf.Scalar {
    if (grads.length !== this.vars.length) {
      throw new Error(`GaLore got ${grads.length} gradients for ${this.vars.length} variables`);
    }
    const refresh = this.#step % this.updateProjGap === 0;
    if (refresh) this.refreshes++;
    this.#step++;
    const o = this.options;
    const c = biasCorrections(o, this.#step);
    return tf.tidy(() => {
      const norm = globalNorm(grads);
      const clip = clipFactor(norm, o.clipNorm);
      for (let i = 0; i < this.vars.length; i++) {
        const g = (clip === 1 ? grads[i] : tf.mul(grads[i], clip)) as tf.Tensor2D;
        if (refresh) {
          this.#p[i]?.dispose();
          this.#p[i] = tf.keep(topSingularVectors(g, this.rank, this.left[i]));
        }
        const p = this.#p[i]!;
        const r = this.left[i] ? tf.matMul(p, g, true, false) : tf.matMul(g, p);
        const n = this.#moments[i].update(r, o, c) as tf.Tensor2D;
        const back = this.left[i] ? tf.matMul(p, n) : tf.matMul(n, p, false, true);
        decoupledStep(this.vars[i], tf.mul(back, this.scale), lr, o.weightDecay);
      }
      return tf.keep(norm);
    });
  }

  dispose(): void {
    for (const m of this.#moments) m.dispose();
    tf.dispose(this.#p.filter((p): p is tf.Tensor2D => p !== null));
  }
}

/** GaLore: full-weight training with a low-rank-projected Adam state. */
export const galore: MethodDefinition<GaloreConfig> = {
  name: "galore",
  description:
    "full weights train; Adam state lives in a low-rank SVD projection of each gradient (Zhao et al. 2024)",
  schema: galoreSchema,
  mergeable: false,
  // The targets' full weights train (GaLore saves optimizer state, not parameters).
  contract: {
    testOptions: { rank: 4, updateProjGap: 2, targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => s.out * s.in),
  },
  apply: (model, config) => {
    const targets = selectTargets(model, config.targets);
    const weights = new Map<string, tf.Variable>();
    for (const name of targets) {
      const layer = model.linear(name);
      if (!(layer instanceof Linear)) {
        throw new Error(`method galore trains full weights; ${name} is not a plain fp32 linear (quantized?)`);
      }
      checkRank(config.rank, layer);
      weights.set(`${name}.weight`, layer.weight);
    }
    const vars = [...weights.values()];
    return inPlaceMethod(weights, {
      nominalRank: config.rank,
      makeOptimizer: (options) => new GaLoreOptimizer(vars, config, options),
    });
  },
};
