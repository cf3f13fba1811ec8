/**
 * TinyLoRA ("Learning to Reason in 13 Parameters", arXiv:2602.04118, 2026; built on LoRA-XS), as
 * Hugging Face PEFT's `TinyLoraConfig` / `tinylora.layer.Linear` (PEFT 0.20.1.dev0).
 *
 * Formula: per adapted W [out, in], the frozen truncated SVD W ~ U_r S_r V_r^T gives
 * A = sqrt(S_r) V_r^T [r, in] and B = U_r sqrt(S_r) [out, r] (PEFT `_init_svd`, r capped at
 * min(out, in)); fixed random P [u, r, r]; a trainable v [u]:
 *   R = sum_i v_i P_i [r, r],  dW = B R A,  y = W x + B R A x.
 * v is shared by a group of layers (`weightTying`, PEFT `weight_tying`): the T targets in model
 * order get groups G = max(1, round(T (1 - weightTying))), size max(1, T // G), layer t in group
 * min(t // size, G - 1) (PEFT `_create_and_replace`; Python's half-to-even round).
 *
 * Initialisation, as PEFT: v = 0 (`init_weights=True`, identity at init) or U(-b, b) with
 * `initWeights="uniform"` (b = `initVBound` 0.02, from the run's rng). P_i entries are
 * N(0, 1/r), seeded per layer by `projectionSeed` + t (PEFT `projection_seed` 42 + layer index)
 * with peft-bench's own generator (torch's differs, but PEFT saves P: `save_projection=True`).
 * The SVD is exact (float64); the signs of the singular pairs are the solver's, so A, B may differ
 * from PEFT's own by column signs, which the export carries.
 *
 * Trainable parameters: u G (`u`, PEFT 64; G = T with the default weightTying 0). Options:
 * `targets` (PEFT's Llama default q_proj, v_proj), `rank` (PEFT `r`, 2), `u`, `weightTying`,
 * `projectionSeed`, `initWeights`, `initVBound`. Mergeable: W' = W + B R A.
 * PEFT export: per module `tinylora_A`, `tinylora_B` (rows in the checkpoint's q/k order) and
 * `tinylora_P` [u, r, r]; the shared `base_model.tinylora_v.{g}` [u] (PEFT's
 * `_get_adapter_state_dict` key, without the adapter name); config `save_projection: true`.
 * The saved state is the v vectors; A, B and P follow from the base and the options.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { LlamaConfig } from "../models/config.ts";
import { Rng } from "../models/util/rng.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, targetShapes } from "./targets.ts";
import { namedArray, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { exactSvd } from "./lora_init.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** TinyLoRA options (PEFT `TinyLoraConfig`, with its defaults). */
export const tinyloraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** SVD rank r of the frozen A, B (PEFT `r`). */
  rank: z.number().int().positive().default(2),
  /** Trainable vector length per group (PEFT `u`). */
  u: z.number().int().positive().default(64),
  /** Share of layers tying one v, 0 (none) to 1 (all; PEFT `weight_tying`). */
  weightTying: z.number().min(0).max(1).default(0),
  /** Base seed of the projections P (PEFT `projection_seed`), plus the layer index. */
  projectionSeed: z.number().int().nonnegative().default(42),
  /** v at init (PEFT `init_weights`): true for zeros, "uniform" for U(-initVBound, initVBound). */
  initWeights: z.union([z.literal(true), z.literal("uniform")]).default(true),
  /** Bound of the uniform init (PEFT `init_v_bound`). */
  initVBound: z.number().positive().default(0.02),
}).strict();

/** TinyLoRA options after defaults. */
export type TinyloraConfig = z.infer<typeof tinyloraSchema>;

/** Python's round(): to the nearest integer, halves to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/** The group of each of T targets (in model order) under `weightTying`, and the group count G. */
export function tyingGroups(count: number, weightTying: number): { groups: number[]; count: number } {
  const g = Math.max(1, roundHalfEven(count * (1 - weightTying)));
  const size = Math.max(1, Math.floor(count / g));
  return { groups: Array.from({ length: count }, (_, t) => Math.min(Math.floor(t / size), g - 1)), count: g };
}

/** A frozen linear layer plus TinyLoRA's B (sum_i v_i P_i) A. */
export class TinyloraLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** Frozen A [r, in] and B [out, r] from the SVD. */
    readonly a: tf.Tensor2D,
    readonly b: tf.Tensor2D,
    /** Frozen projections P [u, r, r]. */
    readonly p: tf.Tensor3D,
    /** The (possibly shared) trainable v [u]. */
    readonly v: tf.Variable,
  ) {
    super(base);
  }

  /** R = sum_i v_i P_i [r, r]. */
  r(): tf.Tensor2D {
    const [u, r] = [this.p.shape[0], this.p.shape[1]];
    return tf.reshape(tf.matMul(tf.reshape(this.v, [1, u]), tf.reshape(this.p, [u, r * r])), [r, r]);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const h = tf.matMul(tf.matMul(x, this.a, false, true), this.r(), false, true);
    return tf.add(this.base.forward(x), tf.matMul(h, this.b, false, true));
  }

  /** dW = B R A. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(tf.matMul(this.b, this.r()), this.a));
  }

  /** Free A, B and P. */
  override disposeOwned(): void {
    tf.dispose([this.a, this.b, this.p]);
  }
}

/** A = sqrt(S_r) V_r^T [r, in] and B = U_r sqrt(S_r) [out, r] of W [out, in] (r <= min(out, in)). */
export function svdFactors(w: Float32Array, out: number, inF: number, r: number) {
  const svd = exactSvd({ rows: out, cols: inF, data: Float64Array.from(w) });
  const k = svd.s.length;
  const a = new Float32Array(r * inF);
  const b = new Float32Array(out * r);
  for (let j = 0; j < r; j++) {
    const s = Math.sqrt(svd.s[j]);
    for (let q = 0; q < inF; q++) a[j * inF + q] = s * svd.v.data[q * k + j];
    for (let p = 0; p < out; p++) b[p * r + j] = s * svd.u.data[p * k + j];
  }
  return { a, b };
}

/** Closed-form trainable count: u per group. */
function tinyloraParameterCount(cfg: LlamaConfig, c: TinyloraConfig): number {
  return c.u * tyingGroups(targetShapes(cfg, c.targets).size, c.weightTying).count;
}

/** TinyLoRA. */
export const tinylora: MethodDefinition<TinyloraConfig> = {
  name: "tinylora",
  description:
    "dW = B (sum of v[i] P[i]) A on frozen top-r SVD factors, fixed random P, a tiny v shared across layers (arXiv:2602.04118; PEFT TinyLoRA)",
  schema: tinyloraSchema,
  mergeable: true,
  // PEFT's MetaMathQA comparison trains TinyLoRA at 10x its default lr (1e-3 vs 1e-4); the same
  // ratio over bench's 0.002. Not re-tuned on peft-bench's tasks.
  defaultLr: 0.02,
  contract: {
    testOptions: { targets: "all-linear", rank: 2, u: 5, weightTying: 0.5 },
    identityAtInit: true,
    parameterCount: tinyloraParameterCount,
    peftTensors: (m, c) => {
      const shapes = targetShapes(m, c.targets);
      const out = new Map<string, number[]>();
      for (const [name, s] of shapes) {
        const r = Math.min(c.rank, s.out, s.in);
        out.set(`${name}.tinylora_A`, [r, s.in]);
        out.set(`${name}.tinylora_B`, [s.out, r]);
        out.set(`${name}.tinylora_P`, [c.u, r, r]);
      }
      const groups = tyingGroups(shapes.size, c.weightTying).count;
      for (let g = 0; g < groups; g++) out.set(`tinylora_v.${g}`, [c.u]);
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const { groups, count } = tyingGroups(targets.length, config.weightTying);
    const vars = new Map<string, tf.Variable>();
    for (let g = 0; g < count; g++) {
      const data = config.initWeights === true
        ? new Float32Array(config.u)
        : ctx.rng.fork(`tinylora_v.${g}`).uniformArray(config.u, -config.initVBound, config.initVBound);
      vars.set(`tinylora_v.${g}`, trainableVariable(data, [config.u]));
    }
    const index = new Map(targets.map((t, i) => [t, i]));
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const [out, inF] = [base.outFeatures, base.inFeatures];
      const r = Math.min(config.rank, out, inF);
      const w = tf.tidy(() => base.denseWeight().dataSync() as Float32Array);
      const { a, b } = svdFactors(w, out, inF, r);
      const t = index.get(name)!;
      const p = new Rng(config.projectionSeed + t).normalArray(config.u * r * r, 1 / Math.sqrt(r));
      return new TinyloraLinear(
        base,
        tf.tensor2d(a, [r, inF]),
        tf.tensor2d(b, [out, r]),
        tf.tensor3d(p, [config.u, r, r]),
        vars.get(`tinylora_v.${groups[t]}`)!,
      );
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: config.rank }),
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          const m = peftModuleName(name);
          tensors.set(`${m}.tinylora_A`, namedArray(l.a));
          tensors.set(`${m}.tinylora_B`, outputRows(name, l.b, model.config));
          tensors.set(`${m}.tinylora_P`, namedArray(l.p));
        }
        for (const [k, v] of vars) tensors.set(`base_model.${k}`, namedArray(v));
        return {
          config: {
            peft_type: "TINYLORA",
            task_type: "CAUSAL_LM",
            r: config.rank,
            u: config.u,
            weight_tying: config.weightTying,
            projection_seed: config.projectionSeed,
            save_projection: true,
            init_v_bound: config.initVBound,
            tinylora_dropout: 0,
            fan_in_fan_out: false,
            init_weights: config.initWeights,
            ...peftTargetFields(targets, model.config.nLayers),
            bias: "none",
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
