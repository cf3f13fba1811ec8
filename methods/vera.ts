/**
 * VeRA, vector-based random matrix adaptation (Kopiczko et al., 2024, arXiv:2310.11454).
 *
 * Formula: dW = diag(b) B diag(d) A, i.e. y = W x + b ⊙ (B (d ⊙ (A x))), with frozen random
 * A [r, in] and B [out, r] and trainable scaling vectors d [r] and b [out].
 *
 * Design choices:
 * - Sharing as in PEFT: one frozen pair vera_A [r, max in], vera_B [max out, r] for the whole
 *   model; a layer uses the slices A[:, :in] and B[:out, :], so every layer of a given shape sees
 *   the same A and B (and q and v of different widths share leading rows). The slices are taken
 *   once per shape, not in every forward.
 * - Initialisation of A and B as PEFT's `_kaiming_init` (tuners/vera/layer.py): U(-bound, bound) with
 *   fan = `_calculate_correct_fan(tensor, "fan_in")`, gain = sqrt(2), std = gain / sqrt(fan),
 *   bound = sqrt(3) std = sqrt(6 / fan) (variance 2 / fan; the ReLU-gain Kaiming init, not LoRA's
 *   a = sqrt(5) one, which is sqrt(6) narrower). fan_in is the second dimension of the full shared
 *   matrix in torch's [out, in] convention: max in for vera_A [r, max in], r for vera_B [max out, r].
 *   Drawn from `ctx.rng.fork("vera_A")` / `fork("vera_B")` (see {@link veraKaimingUniform}).
 * - d starts at `dInitial` (PEFT `d_initial`, default 0.1; the paper's Table 6 ablates it) and b at 0,
 *   so the model is unchanged at init (the paper's and PEFT's default).
 * - No alpha/r scale (PEFT's VeraConfig has none; b and d carry the scale). The rank may exceed
 *   min(in, out): A and B are fixed projections (default r = 256, PEFT's default).
 *
 * Trainable parameters per adapted layer: r + out.
 * Mergeable: merge writes W + diag(b) B diag(d) A.
 * PEFT export: `VeraConfig` with `save_projection: true`; tensors `vera_lambda_b` [out],
 * `vera_lambda_d` [r] per module and the shared `base_model.vera_A` / `base_model.vera_B`
 * (our seeded projections, since PEFT's PRNG cannot be reproduced here). state() holds the
 * projections too (`vera_A`, `vera_B`), so a saved adapter does not depend on the loader's seed.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import type { Rng } from "../models/util/rng.ts";
import { loadStateInto, peftModuleName, stateOf, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields, permutedInHf } from "./peft_export.ts";
import { hfRowOrder } from "../models/hf.ts";
import { LoraLinear } from "./lora.ts";
import { namedArray } from "./lora_variants.ts";
import { adaptedMethod } from "./wrapped.ts";

/** VeRA options. */
export const veraSchema = z.object({
  /** Target preset or pattern (see targets.ts). */
  targets: z.string().default("q+v"),
  /** Rank r of the shared random projections (PEFT default 256). */
  rank: z.number().int().positive().default(256),
  /** Initial value of every entry of d (PEFT `d_initial`). */
  dInitial: z.number().default(0.1),
}).strict();

/** VeRA options after defaults. */
export type VeraConfig = z.infer<typeof veraSchema>;

/**
 * PEFT VeRA's `_kaiming_init` for a [rows, fanIn] matrix: U(-sqrt(6 / fanIn), sqrt(6 / fanIn)),
 * i.e. gain sqrt(2), std sqrt(2 / fanIn), bound sqrt(3) std (variance 2 / fanIn).
 */
export function veraKaimingUniform(rng: Rng, shape: [number, number]): Float32Array {
  const bound = Math.sqrt(3) * (Math.SQRT2 / Math.sqrt(shape[1]));
  return rng.uniformArray(shape[0] * shape[1], -bound, bound);
}

/** A VeRA layer: frozen shared slices `a`, `b` of the projections, trainable vectors d and b. */
export class VeraLinear extends LoraLinear {
  /** d [r]. */
  readonly lambdaD: tf.Variable;
  /** b [out]. */
  readonly lambdaB: tf.Variable;

  constructor(
    base: LinearModule,
    a: tf.Variable,
    b: tf.Variable,
    lambdaD: tf.Variable,
    lambdaB: tf.Variable,
  ) {
    super(base, a, b, 1);
    this.lambdaD = lambdaD;
    this.lambdaB = lambdaB;
  }

  override forward(x: tf.Tensor2D): tf.Tensor2D {
    const h = tf.mul(tf.matMul(x, this.a, false, true), this.lambdaD);
    return tf.add(this.base.forward(x), tf.mul(tf.matMul(h, this.b, false, true), this.lambdaB));
  }

  override delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(
        tf.matMul(tf.mul(this.b, this.lambdaD), this.a),
        tf.reshape(this.lambdaB, [-1, 1]),
      ) as tf.Tensor2D
    );
  }
}

/** VeRA. */
export const vera: MethodDefinition<VeraConfig> = {
  name: "vera",
  description:
    "frozen shared random A, B with trainable scaling vectors: diag(b) B diag(d) A (Kopiczko et al. 2024)",
  schema: veraSchema,
  mergeable: true,
  // Re-tuned with PEFT's projection init (wordnet-lex, 90 updates, seeds 0 and 1: accuracy 0.310
  // at 0.02, 0.332 at 0.05, 0.323 at 0.1).
  defaultLr: 0.05,
  // PEFT `VeraLayer.update_layer`: vera_lambda_b [out], vera_lambda_d [r] per target; the shared
  // vera_A [r, max in], vera_B [max out, r] are frozen (exported, not trained).
  contract: {
    testOptions: { rank: 4 },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank + s.out),
    peftTensors: (m, c) => {
      const shapes = [...targetShapes(m, c.targets)];
      const out = new Map<string, number[]>();
      for (const [name, s] of shapes) {
        out.set(`${name}.vera_lambda_b`, [s.out]);
        out.set(`${name}.vera_lambda_d`, [c.rank]);
      }
      out.set("vera_A", [c.rank, Math.max(...shapes.map(([, s]) => s.in))]);
      out.set("vera_B", [Math.max(...shapes.map(([, s]) => s.out)), c.rank]);
      return out;
    },
  },
  apply(model, config, ctx) {
    const targets = selectTargets(model, config.targets);
    const r = config.rank;
    const layers = targets.map((n) => model.linear(n));
    const maxIn = Math.max(...layers.map((l) => l.inFeatures));
    const maxOut = Math.max(...layers.map((l) => l.outFeatures));
    const frozen = (data: Float32Array, shape: [number, number]) =>
      tf.tidy(() => tf.variable(tf.tensor2d(data, shape), false));
    const shared = new Map([
      ["vera_A", frozen(veraKaimingUniform(ctx.rng.fork("vera_A"), [r, maxIn]), [r, maxIn])],
      ["vera_B", frozen(veraKaimingUniform(ctx.rng.fork("vera_B"), [maxOut, r]), [maxOut, r])],
    ]);
    const sharedA = shared.get("vera_A")!;
    const sharedB = shared.get("vera_B")!;
    // Per-shape slices, re-taken when loadState replaces the shared pair.
    const slices = new Map<string, { v: tf.Variable; make: () => tf.Tensor }>();
    const slice = (key: string, make: () => tf.Tensor): tf.Variable => {
      let e = slices.get(key);
      if (!e) {
        e = { v: tf.tidy(() => tf.variable(make(), false)), make };
        slices.set(key, e);
      }
      return e.v;
    };
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const a = slice(`A${base.inFeatures}`, () => tf.slice(sharedA, [0, 0], [r, base.inFeatures]));
      const b = slice(`B${base.outFeatures}`, () => tf.slice(sharedB, [0, 0], [base.outFeatures, r]));
      const d = trainableVariable(new Float32Array(r).fill(config.dInitial), [r]);
      const lb = trainableVariable(new Float32Array(base.outFeatures), [base.outFeatures]);
      vars.set(`${name}.vera_lambda_d`, d);
      vars.set(`${name}.vera_lambda_b`, lb);
      return new VeraLinear(base, a, b, d, lb);
    });
    const base = adaptedMethod({
      model,
      ctx,
      vars,
      wrapped,
      restore,
      owned: [sharedA, sharedB, ...[...slices.values()].map((e) => e.v)],
      nominalRank: r,
    });
    return {
      ...base,
      // The projections are saved with the vectors (PEFT's save_projection), so a state loads
      // into an application made with another seed.
      state: () => new Map([...base.state(), ...stateOf(shared)]),
      loadState: (t) => {
        base.loadState(t);
        loadStateInto(shared, t);
        for (const e of slices.values()) tf.tidy(() => e.v.assign(e.make()));
      },
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          const m = peftModuleName(name);
          tensors.set(`${m}.vera_lambda_b`, outputRows(name, l.lambdaB, model.config));
          tensors.set(`${m}.vera_lambda_d`, namedArray(l.lambdaD));
        }
        // On a llama2.c (interleaved-RoPE) base, q/k's rows are permuted in the Hugging Face
        // checkpoint, so their slice of the shared vera_B must be too: possible when every target
        // is q or k (one within-head permutation of vera_B's leading rows serves both, heads being
        // aligned), impossible when another layer shares those rows unpermuted.
        const permuted = targets.filter((n) => permutedInHf(n, model.config));
        const refused = permuted.length > 0 && permuted.length < targets.length
          ? `vera: on this interleaved-RoPE (llama2.c) base the Hugging Face q/k rows are permuted, so q/k ` +
            `need a permuted slice of the shared vera_B that ${
              targets.filter((n) => !permutedInHf(n, model.config))[0]
            } uses unpermuted; PEFT shares one vera_B, so no export reproduces the run (use --targets q,k ` +
            `or a Hugging Face base)`
          : undefined;
        tensors.set("base_model.vera_A", namedArray(sharedA));
        const b = sharedB.dataSync() as Float32Array;
        tensors.set("base_model.vera_B", {
          // The widest permuted target (q over k) has vera_B's max out rows and their head count.
          data: permuted.length > 0
            ? hfRowOrder(
              permuted.reduce((x, n) => (wrapped.get(n)!.outFeatures > wrapped.get(x)!.outFeatures ? n : x)),
              b,
              model.config,
            )
            : b,
          shape: [...sharedB.shape],
        });
        return {
          config: {
            peft_type: "VERA",
            task_type: "CAUSAL_LM",
            r,
            ...peftTargetFields(targets, model.config.nLayers),
            projection_prng_key: 0,
            save_projection: true,
            vera_dropout: 0,
            d_initial: config.dInitial,
            fan_in_fan_out: false,
            bias: "none",
            init_weights: true,
            base_model_name_or_path: null,
          },
          tensors,
          refused,
        };
      },
    };
  },
};
