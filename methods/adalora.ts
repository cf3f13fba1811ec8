/**
 * AdaLoRA, adaptive budget allocation (Zhang et al., 2023, arXiv:2303.10512), as Hugging Face PEFT's
 * tuners/adalora (layer.py `SVDLinear`, `RankAllocator`; model.py `AdaLoraModel`).
 *
 * Formula: dW = s P diag(Λ) Q with P [out, r] (PEFT `lora_B`), Λ [r] (`lora_E`), Q [r, in]
 * (`lora_A`), r = initR, s = alpha / initR. Loss term (PEFT's, see `AdaloraLinear.orthogonality`):
 *   orthReg · mean over the 2n matrices of (||P^T P - I||_F and ||Q Q^T - I||_F), n adapted layers.
 * Rank allocation (paper Sec. 3.2-3.3, `afterStep`): after update t of T, the initR·n - b(t)
 * triplets (P_:i, Λ_i, Q_i:) with the lowest smoothed sensitivity scores get Λ_i = 0, b(t) the cubic
 * budget of {@link adaloraBudget}; from t = T - tfinal the pattern is fixed at targetR·n.
 *
 * Initialisation (paper Sec. 3.1, PEFT `reset_lora_parameters`): Λ = 0, P and Q ~ N(0, 0.02²)
 * from `ctx.rng.fork(name + ".lora_B" / ".lora_A")`; the model is unchanged at init.
 *
 * Trainable parameters per adapted layer: initR (in + out + 1). nominalRank = targetR.
 * Mergeable: merge writes W + s P diag(Λ) Q. PEFT export: `AdaLoraConfig`, resized to the kept
 * triplets by `rank_pattern` (see `peftExport`).
 *
 * Deviations from PEFT, each with its reason:
 * - s omits the +1e-5 of PEFT's lora_alpha / (ranknum + 1e-5) (ranknum stays init_r): a relative
 *   change below 1e-5.
 * - tinit, tfinal default to 10% and 20% of the updates (PEFT: 0): with tfinal = 0 the kept triplets
 *   never train at the target budget ({@link adaloraSchema}; 0 and 0 give PEFT's).
 * - exactly initR·n - b(t) triplets are masked (ties by layer, then index): PEFT's kthvalue
 *   threshold with `<=` may mask more on ties, below the budget.
 * - the mask is re-applied after every update (PEFT: at allocations; the same for deltaT = 1), so
 *   masked triplets stay off between allocations.
 * - alpha defaults to 16, the project's LoRA default (PEFT's is 8).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { optionFlag, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import { LoraLinear } from "./lora.ts";
import { namedArray } from "./lora_variants.ts";
import { adaptedMethod } from "./wrapped.ts";

/**
 * AdaLoRA options. Defaults: beta1 = beta2 = 0.85 and deltaT 1 (PEFT's), orthReg 0.5 (PEFT's
 * orth_reg_weight; the paper's γ is 0.1), alpha 16 (the project's LoRA default; PEFT's is 8).
 * tinit = floor(tinitFraction·T), tfinal = floor(tfinalFraction·T) unless given in updates, with
 * tinitFraction 0.1 and tfinalFraction 0.2: a deliberate difference from PEFT, whose tinit and
 * tfinal default to 0 (placeholders next to its required total_step). With tfinal = 0 the last
 * pruning happens at the last update, so the kept triplets never train at the target budget; the
 * paper's runs use warm-up and final phases of a few percent to a third of training. The fractions
 * are options so the run record states the schedule (`--opt tinitFraction=0 --opt
 * tfinalFraction=0` gives PEFT's). Needs tinit < T - tfinal.
 */
export const adaloraSchema = z.object({
  /** Target preset or pattern (see targets.ts). */
  targets: z.string().default("q+v"),
  /** Rank of every layer before allocation (PEFT init_r). */
  initR: z.number().int().positive().default(12),
  /** Average rank per layer after allocation: total budget targetR x layers (PEFT target_r). */
  targetR: z.number().int().positive().default(8),
  /** Scaling numerator: s = alpha / initR. */
  alpha: z.number().positive().default(16),
  /** Warm-up updates before any pruning (default: tinitFraction of the run's updates). */
  tinit: z.number().int().nonnegative().optional(),
  /** Final updates with a frozen rank pattern (default: tfinalFraction of the run's updates). */
  tfinal: z.number().int().nonnegative().optional(),
  /** tinit as a share of the run's updates when tinit is not given (PEFT's default tinit is 0). */
  tinitFraction: z.number().min(0).lt(1).default(0.1),
  /** tfinal as a share of the run's updates when tfinal is not given (PEFT's default tfinal is 0). */
  tfinalFraction: z.number().min(0).lt(1).default(0.2),
  /** Updates between two allocations during the budget decrease. */
  deltaT: z.number().int().positive().default(1),
  /** EMA factor of the sensitivity. */
  beta1: z.number().gt(0).lt(1).default(0.85),
  /** EMA factor of the uncertainty. */
  beta2: z.number().gt(0).lt(1).default(0.85),
  /** Weight of the orthogonality regularizer (PEFT orth_reg_weight). */
  orthReg: z.number().nonnegative().default(0.5),
}).strict();

/** AdaLoRA options after defaults. */
export type AdaloraConfig = z.infer<typeof adaloraSchema>;

/** The budget schedule's constants. */
export interface BudgetSchedule {
  initBudget: number;
  targetBudget: number;
  tinit: number;
  tfinal: number;
  totalSteps: number;
  deltaT: number;
}

/**
 * Total rank budget after t updates and whether to allocate now (PEFT `budget_schedule`, paper
 * eq. 11), with n adapted layers and T = totalSteps: b(t) = initR·n for t <= tinit; targetR·n for
 * t > T - tfinal; otherwise floor((initR·n - targetR·n)(1 - (t - tinit)/(T - tfinal - tinit))^3 +
 * targetR·n), allocating when t % deltaT == 0.
 */
export function adaloraBudget(t: number, s: BudgetSchedule): { budget: number; mask: boolean } {
  if (t <= s.tinit) return { budget: s.initBudget, mask: false };
  if (t > s.totalSteps - s.tfinal) return { budget: s.targetBudget, mask: true };
  const coeff = 1 - (t - s.tinit) / (s.totalSteps - s.tfinal - s.tinit);
  return {
    budget: Math.floor((s.initBudget - s.targetBudget) * coeff ** 3 + s.targetBudget),
    mask: t % s.deltaT === 0,
  };
}

/** An SVD-form layer: s P diag(Λ) Q, with `b` = P and `a` = Q. */
export class AdaloraLinear extends LoraLinear {
  /** Λ [r]. */
  readonly lambda: tf.Variable;

  constructor(base: LinearModule, q: tf.Variable, p: tf.Variable, lambda: tf.Variable, scale: number) {
    super(base, q, p, scale);
    this.lambda = lambda;
  }

  override forward(x: tf.Tensor2D): tf.Tensor2D {
    const low = tf.matMul(tf.mul(tf.matMul(x, this.a, false, true), this.lambda), this.b, false, true);
    return tf.add(this.base.forward(x), tf.mul(low, this.scale));
  }

  override delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(this.b, tf.mul(this.a, tf.reshape(this.lambda, [-1, 1]))), this.scale) as tf.Tensor2D
    );
  }

  /**
   * ||P^T P - I||_F + ||Q Q^T - I||_F. The regularizer is orthReg times the mean of these norms over
   * the 2n matrices, as PEFT's `AdaLoraModel.forward` (unsquared Frobenius norms averaged over every
   * P and Q; the paper's R(P, Q) squares them, and an earlier version here did, averaging per
   * layer). Each norm is floored at 1e-12 (its square at 1e-24) so an exactly orthonormal factor
   * has a zero, not NaN, gradient, as torch.norm's subgradient.
   */
  orthogonality(eye: tf.Tensor2D): tf.Scalar {
    const norm = (m: tf.Tensor) => tf.sqrt(tf.maximum(tf.sum(tf.square(tf.sub(m, eye))), 1e-24));
    return tf.add(
      norm(tf.matMul(this.b, this.b, true, false)),
      norm(tf.matMul(this.a, this.a, false, true)),
    ) as tf.Scalar;
  }
}

/** Smoothed sensitivity Ī and uncertainty Ū of one variable. */
interface Importance {
  ipt: tf.Tensor;
  unc: tf.Tensor;
}

/** AdaLoRA. */
export const adalora: MethodDefinition<AdaloraConfig> = {
  name: "adalora",
  description: "SVD-form LoRA whose rank budget is reallocated by sensitivity scores (Zhang et al. 2023)",
  schema: adaloraSchema,
  mergeable: true,
  // Re-tuned with PEFT's penalty (orthReg 0.5, unsquared norms over matrices): wordnet-lex, default
  // budget, seeds 0 and 1, mean accuracy 0.326 at 0.002, 0.335 at 0.005, 0.358 at 0.01, 0.381 at
  // 0.02, 0.375 at 0.05.
  defaultLr: 0.02,
  // PEFT `AdaLoraLayer.update_layer`: lora_A [r, in], lora_E [r, 1], lora_B [out, r] with r = init_r
  // (the export before any allocation keeps all r triplets).
  contract: {
    testOptions: { initR: 4, targetR: 2, targets: "q+v" },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.initR * (s.in + s.out + 1)),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [name, s] of targetShapes(m, c.targets)) {
        out.set(`${name}.lora_A`, [c.initR, s.in]);
        out.set(`${name}.lora_B`, [s.out, c.initR]);
        out.set(`${name}.lora_E`, [c.initR, 1]);
      }
      return out;
    },
  },
  apply(model, config, ctx) {
    const targets = selectTargets(model, config.targets);
    const r = config.initR;
    if (config.targetR > r) {
      throw new Error(
        `${optionFlag("targetR", config.targetR)} exceeds ${optionFlag("initR", r)}; ` +
          "the target rank must be at most the initial rank",
      );
    }
    const total = ctx.totalSteps;
    const schedule: BudgetSchedule = {
      initBudget: r * targets.length,
      targetBudget: config.targetR * targets.length,
      tinit: config.tinit ?? Math.floor(config.tinitFraction * total),
      tfinal: config.tfinal ?? Math.floor(config.tfinalFraction * total),
      totalSteps: total,
      deltaT: config.deltaT,
    };
    if (!(schedule.tinit < total - schedule.tfinal)) {
      throw new Error(
        `adalora needs tinit < total steps - tfinal, got tinit ${schedule.tinit}, tfinal ${schedule.tfinal}, ` +
          `${total} steps`,
      );
    }
    const scale = config.alpha / r;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const max = Math.min(base.inFeatures, base.outFeatures);
      if (r > max) {
        throw new Error(
          `${
            optionFlag("initR", r)
          } is impossible for ${name} [${base.outFeatures}x${base.inFeatures}]: at most ${max}`,
        );
      }
      const q = trainableVariable(ctx.rng.fork(`${name}.lora_A`).normalArray(r * base.inFeatures, 0.02), [
        r,
        base.inFeatures,
      ]);
      const p = trainableVariable(ctx.rng.fork(`${name}.lora_B`).normalArray(base.outFeatures * r, 0.02), [
        base.outFeatures,
        r,
      ]);
      const lambda = trainableVariable(new Float32Array(r), [r]);
      vars.set(`${name}.lora_A`, q);
      vars.set(`${name}.lora_B`, p);
      vars.set(`${name}.lora_E`, lambda);
      return new AdaloraLinear(base, q, p, lambda, scale);
    });
    const layers = [...wrapped.values()];
    const eye = tf.eye(r) as tf.Tensor2D;

    // Importance EMAs per variable, the current mask per layer and whether it is final.
    const importance = new Map<tf.Variable, Importance>();
    let masks: tf.Tensor1D[] | null = null;
    let frozenPattern = false;

    /**
     * Sensitivity of every entry w of P, Λ, Q: I = |w · grad| (after the update, as PEFT calls
     * `update_and_allocate` after `optimizer.step()`); smoothed Ī = β1 Ī + (1-β1) I and
     * uncertainty Ū = β2 Ū + (1-β2) |I - Ī|.
     */
    const updateImportance = (grads: Map<tf.Variable, tf.Tensor>) => {
      const { beta1, beta2 } = config;
      for (const v of vars.values()) {
        const g = grads.get(v);
        if (!g) continue;
        const old = importance.get(v);
        const next = tf.tidy(() => {
          const cur = tf.abs(tf.mul(v, g));
          const ipt = old ? tf.add(tf.mul(old.ipt, beta1), tf.mul(cur, 1 - beta1)) : tf.mul(cur, 1 - beta1);
          const dev = tf.abs(tf.sub(cur, ipt));
          const unc = old ? tf.add(tf.mul(old.unc, beta2), tf.mul(dev, 1 - beta2)) : tf.mul(dev, 1 - beta2);
          return { ipt, unc };
        });
        if (old) tf.dispose([old.ipt, old.unc]);
        importance.set(v, next);
      }
    };

    /** Entry score Ī · Ū of a variable, averaged over `axis` when given. */
    const score = (v: tf.Variable, axis: number | null): tf.Tensor1D => {
      const e = importance.get(v);
      if (!e) return tf.zeros([r]);
      const s = tf.mul(e.ipt, e.unc);
      return (axis === null ? s : tf.mean(s, axis)) as tf.Tensor1D;
    };

    /** Triplet scores per layer [n][r]: S_i = score(Λ_i) + mean_j score(P_ji) + mean_j score(Q_ij). */
    const tripletScores = (): Float32Array[] =>
      layers.map((l) =>
        tf.tidy(() =>
          tf.addN([score(l.lambda, null), score(l.b, 0), score(l.a, 1)]).dataSync() as Float32Array
        )
      );

    /**
     * The initR·n - budget lowest-scored triplets over all layers get Λ_i = 0: exactly that many
     * (ties broken by layer order, then index), where PEFT's kthvalue threshold with `<=` may mask
     * more on ties.
     */
    const allocate = (budget: number) => {
      const scores = tripletScores();
      const all: { s: number; layer: number; i: number }[] = [];
      scores.forEach((s, layer) => s.forEach((v, i) => all.push({ s: v, layer, i })));
      all.sort((x, y) => x.s - y.s || x.layer - y.layer || x.i - y.i);
      const keep = scores.map(() => new Float32Array(r).fill(1));
      for (let k = 0; k < schedule.initBudget - budget; k++) keep[all[k].layer][all[k].i] = 0;
      if (masks) tf.dispose(masks);
      masks = keep.map((m) => tf.tensor1d(m));
    };

    /**
     * Re-applies the mask after every update until the next allocation ("keep masked"; PEFT
     * re-applies it only at allocations before the final phase, the same for deltaT = 1).
     */
    const applyMasks = () => {
      if (!masks) return;
      layers.forEach((l, i) => tf.tidy(() => l.lambda.assign(tf.mul(l.lambda, masks![i]))));
    };

    const dropImportance = () => {
      for (const e of importance.values()) tf.dispose([e.ipt, e.unc]);
      importance.clear();
    };

    const method = adaptedMethod({
      model,
      ctx,
      vars,
      wrapped,
      restore,
      owned: [eye],
      nominalRank: config.targetR,
    });
    return {
      ...method,
      regularizer: () =>
        tf.mul(
          tf.addN(layers.map((l) => l.orthogonality(eye))),
          config.orthReg / (2 * layers.length),
        ) as tf.Scalar,
      /**
       * Rank allocation (paper Sec. 3.2-3.3, PEFT `RankAllocator`), with t = the 0-based update
       * index + 1 (updates done) and T = ctx.totalSteps: importance is updated while t < T - tfinal,
       * allocating by {@link adaloraBudget}. At t = T - tfinal the allocation is forced to the target
       * budget and frozen: the pattern is re-applied after every later update (PEFT
       * `mask_using_rank_pattern`) and the scores are dropped. With t counting updates done, even
       * tfinal = 0 ends on the target budget.
       */
      afterStep: (grads, step) => {
        const t = step + 1;
        const finalAt = total - schedule.tfinal;
        if (!frozenPattern && t < finalAt) {
          updateImportance(grads);
          const { budget, mask } = adaloraBudget(t, schedule);
          if (mask) allocate(budget);
        } else if (!frozenPattern) {
          allocate(schedule.targetBudget);
          frozenPattern = true;
          dropImportance();
        }
        applyMasks();
      },
      /**
       * `AdaLoraConfig` and tensors `lora_A` [r, in], `lora_B` [out, r], `lora_E` [r, 1] per module,
       * resized to the kept triplets with `rank_pattern` (keyed `model.layers.N.self_attn.q_proj.lora_E`)
       * once an allocation happened, as PEFT's `resize_state_dict_by_rank_pattern` saves them.
       */
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        const rankPattern: Record<string, boolean[]> = {};
        layers.forEach((l, li) => {
          const m = peftModuleName(l.name);
          const keep = masks ? Array.from(masks[li].dataSync(), (x) => x > 0) : new Array(r).fill(true);
          const kept = keep.flatMap((k, i) => (k ? [i] : []));
          const parts = tf.tidy(() => {
            const idx = tf.tensor1d(kept, "int32");
            return [
              tf.gather(l.a, idx, 0),
              tf.gather(l.b, idx, 1),
              tf.reshape(tf.gather(l.lambda, idx), [-1, 1]),
            ];
          });
          tensors.set(`${m}.lora_A`, namedArray(parts[0]));
          tensors.set(`${m}.lora_B`, outputRows(l.name, parts[1], model.config)); // P's rows: q/k permuted on llama2.c bases
          tensors.set(`${m}.lora_E`, namedArray(parts[2]));
          tf.dispose(parts);
          if (masks) rankPattern[`${m.replace(/^base_model\.model\./, "")}.lora_E`] = keep;
        });
        return {
          config: {
            peft_type: "ADALORA",
            task_type: "CAUSAL_LM",
            init_r: r,
            target_r: config.targetR,
            lora_alpha: config.alpha,
            lora_dropout: 0,
            ...peftTargetFields(targets, model.config.nLayers),
            tinit: schedule.tinit,
            tfinal: schedule.tfinal,
            deltaT: config.deltaT,
            beta1: config.beta1,
            beta2: config.beta2,
            orth_reg_weight: config.orthReg,
            total_step: total,
            rank_pattern: masks ? rankPattern : null,
            bias: "none",
            fan_in_fan_out: false,
            init_lora_weights: true,
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
      dispose: () => {
        method.dispose();
        dropImportance();
        if (masks) tf.dispose(masks);
      },
    };
  },
};
