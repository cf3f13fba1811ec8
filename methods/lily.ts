/**
 * Lily, low-rank interconnected adaptation across layers (Zhong et al. 2024, "Low-Rank
 * Interconnected Adaptation across Layers", arXiv 2407.09946), as Hugging Face PEFT's `lily`
 * (`LilyConfig`, `lily.layer.Linear`, `LilyModel._post_injection_hook`, PEFT 0.20.1.dev0).
 *
 * Formula, per adapted layer with input rows x [N, in] (N = every token of the batch):
 *   h = x A^T  [N, r]                      (A [r, in]: the low-dimensional projector)
 *   p = mean_N softmax(h R^T)  [num_B]     (R [num_B, r]: this layer's router)
 *   y = W x + s h (sum_e p_e B_e)          (B [num_B r, out] read as num_B experts B_e [r, out])
 * Sharing, as PEFT's post-injection hook: layers are grouped by target kind (`attn.q`, `mlp.down`,
 * ...; PEFT groups by matched `target_modules` suffix and weight shape); within a group the
 * consecutive blocks of `strideA` layers share one A, and every layer shares the group's one B
 * (the "high-dimensional experts"); each layer keeps its own router.
 *
 * Initialisation, as PEFT (`init_weights=True`): A and R Kaiming-uniform (a = sqrt 5, U(-1/sqrt in,
 * 1/sqrt in) and U(-1/sqrt r, 1/sqrt r)), B zero: the function is unchanged at init.
 *
 * Trainable parameters, per group of L layers [out x in]: ceil(L / strideA) r in + num_B r out +
 * L num_B r. Options (PEFT defaults): `targets` (PEFT's Llama default q_proj, v_proj), `rank` r
 * (32), `strideA` (1), `numB` (2), `scaling` s (1.0, a direct multiplier, no alpha / r).
 *
 * Not mergeable: the expert weights p are averaged over the batch's tokens, so the update depends
 * on the input (PEFT's `merge` raises NotImplementedError too). No PEFT export yet: the update depends
 * on the input through the router, and the independent export reader (methods/peft_reader_test_utils.ts)
 * proves exports through merged weights or a prompt-side forward only, so an export could not be checked.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, targetShapes } from "./targets.ts";
import { kaimingUniform, trainableVariable, wrapLinears } from "./common.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** Lily options (PEFT `LilyConfig`, with its defaults). */
export const lilySchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Rank r of A and of each expert B_e (PEFT `r`). */
  rank: z.number().int().positive().default(32),
  /** Consecutive layers of one kind sharing one A (PEFT `stride_A`). */
  strideA: z.number().int().positive().default(1),
  /** Experts B_e shared by every layer of one kind (PEFT `num_B`). */
  numB: z.number().int().positive().default(2),
  /** Multiplier s of the adapter output (PEFT `scaling`). */
  scaling: z.number().default(1.0),
}).strict();

/** Lily options after defaults. */
export type LilyConfig = z.infer<typeof lilySchema>;

/** The kind of a decoder layer name: `layers.3.attn.q` -> `attn.q` (PEFT's target suffix). */
export function layerKind(name: string): string {
  return name.replace(/^layers\.\d+\./, "");
}

/** A frozen linear layer plus Lily's (possibly shared) projector A, shared experts B and own router. */
export class LilyLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** A [r, in], shared by a block of strideA layers. */
    readonly a: tf.Variable,
    /** B [numB r, out], shared by every layer of this kind. */
    readonly b: tf.Variable,
    /** Router R [numB, r], this layer's own. */
    readonly router: tf.Variable,
    readonly scaling: number,
  ) {
    super(base);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const [numB, r] = this.router.shape;
    const h = tf.matMul(x, this.a, false, true); // [N, r]
    const p = tf.mean(tf.softmax(tf.matMul(h, this.router, false, true)), 0); // [numB]
    const experts = tf.reshape(this.b, [numB, r * this.outFeatures]);
    const combined = tf.reshape(tf.matMul(tf.reshape(p, [1, numB]), experts), [r, this.outFeatures]);
    return tf.add(this.base.forward(x), tf.mul(tf.matMul(h, combined), this.scaling));
  }

  /** Lily's update depends on the batch (the router's mean); there is no input-free dW. */
  delta(): tf.Tensor2D {
    throw new Error(
      "lily: the update depends on the input (router averaged over the batch); it cannot be merged",
    );
  }
}

/** Layer names grouped by kind, in model order (PEFT's traversal order within a group). */
function groups(names: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of names) out.set(layerKind(n), [...(out.get(layerKind(n)) ?? []), n]);
  return out;
}

/** Lily. */
export const lily: MethodDefinition<LilyConfig> = {
  name: "lily",
  description:
    "Low-rank projectors shared across strideA layers, experts B shared across all layers, mixed by a per-layer router (Zhong et al. 2024; PEFT Lily)",
  schema: lilySchema,
  mergeable: false,
  contract: {
    testOptions: { targets: "all-linear", rank: 4, strideA: 2, numB: 3 },
    identityAtInit: true,
    parameterCount: (m, c) => {
      const shapes = targetShapes(m, c.targets);
      let total = 0;
      for (const names of groups([...shapes.keys()]).values()) {
        const s = shapes.get(names[0])!;
        total += Math.ceil(names.length / c.strideA) * c.rank * s.in + c.numB * c.rank * s.out +
          names.length * c.numB * c.rank;
      }
      return total;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const r = config.rank;
    const vars = new Map<string, tf.Variable>();
    const byKind = groups(targets);
    const shared = new Map<string, { a: tf.Variable; b: tf.Variable }>();
    for (const [kind, names] of byKind) {
      names.forEach((name, i) => {
        const base = model.linear(name);
        if (i % config.strideA === 0) {
          const a = trainableVariable(kaimingUniform(ctx.rng.fork(`${name}.lily_A`), [r, base.inFeatures]), [
            r,
            base.inFeatures,
          ]);
          vars.set(`${name}.lily_A`, a);
        }
        const leader = names[i - (i % config.strideA)];
        if (i === 0) {
          const b = trainableVariable(new Float32Array(config.numB * r * base.outFeatures), [
            config.numB * r,
            base.outFeatures,
          ]);
          vars.set(`${kind}.lily_B`, b);
        }
        shared.set(name, { a: vars.get(`${leader}.lily_A`)!, b: vars.get(`${kind}.lily_B`)! });
      });
    }
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const router = trainableVariable(
        kaimingUniform(ctx.rng.fork(`${name}.lily_router`), [config.numB, r]),
        [
          config.numB,
          r,
        ],
      );
      vars.set(`${name}.lily_router`, router);
      const { a, b } = shared.get(name)!;
      if (a.shape[1] !== base.inFeatures || b.shape[1] !== base.outFeatures) {
        throw new Error(
          `lily: ${name} differs in shape from the other ${layerKind(name)} layers; use --targets`,
        );
      }
      return new LilyLinear(base, a, b, router, config.scaling);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: r });
    return { ...applied, merge: undefined, deltaWeights: undefined };
  },
};
