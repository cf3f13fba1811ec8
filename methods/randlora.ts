/**
 * RandLoRA, full-rank parameter-efficient fine-tuning of large models (Albert et al. 2025,
 * arXiv 2502.00987), as Hugging Face PEFT's `randlora` (`RandLoraConfig`, `randlora.layer.Linear`,
 * `RandLoraModel._init_randlora_A_randlora_B`, PEFT 0.20.1.dev0).
 *
 * Formula, per adapted layer W [out, in] with lo = min(in, out), hi = max(in, out) and
 * n = ceil(lo / r) bases (enough for full rank):
 *   UA[i n + k, d] = lambda[i, k] A[i, d] gamma[k, d]      [r n, lo]  (one base A, PEFT's UniqueBaseGrad)
 *   UB[m, k r + j] = B[m, k, j]                              [hi, n r]
 *   M = UB UA [hi, lo];  dW = s M when in <= out, s M^T otherwise;  s = alpha / r;  y = W x + dW x.
 *
 * Initialisation, as PEFT (`init_weights=True`): lambda = 0 [r, n], gamma = 1 / max(n, lo) [n, lo]:
 * dW = 0, the function is unchanged at init. Shared frozen bases, as PEFT's default (`sparse=False`):
 * from the elementwise largest target shape (HI, LO), A [r, LO] Kaiming-uniform (bound 1/sqrt LO) and
 * B [HI, N, r] (N = ceil(LO / r), each basis Kaiming-uniform, bound 1/sqrt r), each then divided by
 * its own sample std and rounded to bfloat16 (`stdNormalised`); every layer uses the leading
 * [r, lo] of A and [hi, n, r] of B.
 *
 * Trainable parameters per layer: r n + n lo. Mergeable: W' = W + dW.
 *
 * Differences from PEFT: the bases are drawn from `projectionPrngKey` with this project's Rng, since
 * PEFT's torch generator is not reproduced (the export saves them: `save_projection=True`); PEFT's
 * `sparse` / `very_sparse` ternary bases are not offered (PEFT's default is the dense ones). PEFT
 * export: see `peftExport`.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import { Rng } from "../models/util/rng.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, stateOf, trainableVariable, wrapLinears } from "./common.ts";
import { bf16BitsToF32, f32ToBf16Bits } from "../models/safetensors.ts";
import { peftTargetFields, permutedInHf } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** RandLoRA options (PEFT `RandLoraConfig`, with its defaults). */
export const randloraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /**
   * Rank r of each random basis (PEFT `r`); n = ceil(min(in, out) / r) bases per layer, so a smaller
   * rank means more bases and more parameters.
   */
  rank: z.number().int().positive().default(32),
  /** Scale numerator: s = alpha / r (PEFT `randlora_alpha`; 640, s = 20 at the default rank). */
  alpha: z.number().default(640),
  /**
   * Seed of the shared frozen bases (PEFT `projection_prng_key`, default 0), not the run seed, so
   * the bases depend only on the options.
   */
  projectionPrngKey: z.number().int().nonnegative().default(0),
}).strict();

/** RandLoRA options after defaults. */
export type RandloraConfig = z.infer<typeof randloraSchema>;

/** Number of bases for full rank: ceil(min(in, out) / r) (PEFT `num_bases`). */
export function numBases(inF: number, out: number, r: number): number {
  return Math.ceil(Math.min(inF, out) / r);
}

/**
 * Divide by the sample (n - 1) standard deviation, as torch's `Tensor.std()`, then round to bfloat16:
 * PEFT's `_kaiming_init` makes the bases bfloat16 (float16 without bf16 support); here they are
 * rounded to bfloat16 after the normalisation and held in fp32, so PEFT loading them into its bf16
 * buffers changes nothing.
 */
function stdNormalised(data: Float32Array): Float32Array {
  const mean = data.reduce((s, v) => s + v, 0) / data.length;
  const variance = data.reduce((s, v) => s + (v - mean) ** 2, 0) / (data.length - 1);
  const sd = Math.sqrt(variance);
  // Held as bfloat16 values, as PEFT's buffers are.
  return data.map((v) => bf16BitsToF32(f32ToBf16Bits(v / sd)));
}

/** A frozen linear layer plus RandLoRA's trainable lambda, gamma over the shared random bases. */
export class RandloraLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** This layer's slice of the shared A: [r, lo]. */
    readonly a: tf.Tensor2D,
    /** This layer's slice of the shared B: [hi, n, r]. */
    readonly b: tf.Tensor3D,
    /** lambda [r, n]. */
    readonly lambda: tf.Variable,
    /** gamma [n, lo]. */
    readonly gamma: tf.Variable,
    readonly scaling: number,
  ) {
    super(base);
  }

  /**
   * UB [hi, n r] and the scaled UA [r n, lo] (PEFT `get_scaled_bases`). The two flattenings pair
   * column k r + j of UB with row i n + k' of UA, exactly as PEFT's `flatten(start_dim=1)` /
   * `flatten(end_dim=1)` do (the paper writes sum_k B_k Lambda_k A Gamma_k).
   */
  bases(): [tf.Tensor2D, tf.Tensor2D] {
    const [r, n] = this.lambda.shape;
    const lo = this.a.shape[1];
    const ub = tf.reshape(this.b, [this.b.shape[0], n * r]) as tf.Tensor2D;
    const ua = tf.mul(
      tf.mul(tf.reshape(this.lambda, [r, n, 1]), tf.reshape(this.a, [r, 1, lo])),
      tf.reshape(this.gamma, [1, n, lo]),
    );
    return [ub, tf.reshape(ua, [r * n, lo]) as tf.Tensor2D];
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const [ub, ua] = this.bases();
    // in is the small side: x UA^T UB^T; otherwise x UB UA (PEFT's two F.linear calls).
    const update = this.inFeatures <= this.outFeatures
      ? tf.matMul(tf.matMul(x, ua, false, true), ub, false, true)
      : tf.matMul(tf.matMul(x, ub), ua);
    return tf.add(this.base.forward(x), tf.mul(update, this.scaling));
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const [ub, ua] = this.bases();
      const m = tf.mul(tf.matMul(ub, ua), this.scaling) as tf.Tensor2D;
      return this.inFeatures <= this.outFeatures ? m : tf.transpose(m);
    });
  }
}

/** RandLoRA. */
export const randlora: MethodDefinition<RandloraConfig> = {
  name: "randlora",
  description:
    "Full-rank update from shared frozen random bases with trainable diagonal scalings lambda, gamma (Albert et al. 2025; PEFT RandLoRA)",
  schema: randloraSchema,
  mergeable: true,
  contract: {
    testOptions: { targets: "all-linear", rank: 4, alpha: 8 },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const n = numBases(s.in, s.out, c.rank);
        return c.rank * n + n * Math.min(s.in, s.out);
      }),
    peftTensors: (m, c) => {
      const shapes = targetShapes(m, c.targets);
      const [maxOut, maxIn] = [...shapes.values()].reduce(
        ([o, i], s) => [Math.max(o, s.out), Math.max(i, s.in)],
        [0, 0],
      );
      const [hi, lo] = [Math.max(maxOut, maxIn), Math.min(maxOut, maxIn)];
      const out = new Map<string, number[]>([
        ["randlora_A", [c.rank, 1, lo]],
        ["randlora_B", [hi, Math.ceil(lo / c.rank), c.rank]],
      ]);
      for (const [name, s] of shapes) {
        const n = numBases(s.in, s.out, c.rank);
        out.set(`${name}.randlora_lambda`, [c.rank, n]);
        out.set(`${name}.randlora_gamma`, [n, Math.min(s.in, s.out)]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const r = config.rank;
    // PEFT `_find_dim`: the elementwise largest (out, in) over the targets.
    let [maxOut, maxIn] = [0, 0];
    for (const t of targets) {
      const l = model.linear(t);
      maxOut = Math.max(maxOut, l.outFeatures);
      maxIn = Math.max(maxIn, l.inFeatures);
    }
    const [hiAll, loAll] = [Math.max(maxOut, maxIn), Math.min(maxOut, maxIn)];
    const nAll = Math.ceil(loAll / r);
    const rng = new Rng(config.projectionPrngKey);
    const aBound = 1 / Math.sqrt(loAll);
    const sharedA = tf.tensor2d(
      stdNormalised(rng.fork("randlora_A").uniformArray(r * loAll, -aBound, aBound)),
      [r, loAll],
    );
    const bBound = 1 / Math.sqrt(r);
    const sharedB = tf.tensor3d(
      stdNormalised(rng.fork("randlora_B").uniformArray(hiAll * nAll * r, -bBound, bBound)),
      [hiAll, nAll, r],
    );
    const owned: tf.Tensor[] = [sharedA, sharedB];
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const [inF, out] = [base.inFeatures, base.outFeatures];
      const [hi, lo] = [Math.max(inF, out), Math.min(inF, out)];
      const n = numBases(inF, out, r);
      const a = tf.slice(sharedA, [0, 0], [r, lo]);
      const b = tf.slice(sharedB, [0, 0, 0], [hi, n, r]);
      owned.push(a, b);
      const lambda = trainableVariable(new Float32Array(r * n), [r, n]);
      const gamma = trainableVariable(new Float32Array(n * lo).fill(1 / Math.max(n, lo)), [n, lo]);
      vars.set(`${name}.randlora_lambda`, lambda);
      vars.set(`${name}.randlora_gamma`, gamma);
      return new RandloraLinear(base, a, b, lambda, gamma, config.alpha / r);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore, owned, nominalRank: r });
    return {
      ...applied,
      /**
       * PEFT export (`save_projection=True`): per module `randlora_lambda`, `randlora_gamma`, and
       * the shared `base_model.randlora_A` [r, 1, LO] and `base_model.randlora_B` [HI, N, r] once
       * (PEFT's per-layer references to the same buffers load from them). On q/k of an
       * interleaved-RoPE model the checkpoint permutes W's rows, which the shared bases cannot
       * follow: that export is refused.
       */
      peftExport: () => {
        const tensors = new Map([...stateOf(vars)].map(([k, v]) => {
          const dot = k.lastIndexOf(".");
          return [`${peftModuleName(k.slice(0, dot))}.${k.slice(dot + 1)}`, v];
        }));
        tensors.set("base_model.randlora_A", {
          data: sharedA.dataSync() as Float32Array,
          shape: [r, 1, loAll],
        });
        tensors.set("base_model.randlora_B", {
          data: sharedB.dataSync() as Float32Array,
          shape: [hiAll, nAll, r],
        });
        const permuted = targets.filter((t) => permutedInHf(t, model.config));
        return {
          refused: permuted.length > 0
            ? `randlora: the checkpoint permutes the output rows of ${
              permuted[0]
            } (interleaved RoPE), which the shared random bases cannot follow; use --targets without q,k`
            : undefined,
          config: {
            peft_type: "RANDLORA",
            task_type: "CAUSAL_LM",
            r,
            randlora_alpha: config.alpha,
            projection_prng_key: config.projectionPrngKey,
            save_projection: true,
            sparse: false,
            very_sparse: false,
            randlora_dropout: 0,
            fan_in_fan_out: false,
            init_weights: true,
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
