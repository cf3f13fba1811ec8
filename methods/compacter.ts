/**
 * Compacter (Karimi Mahabadi, Henderson & Ruder, 2021, "Compacter: Efficient Low-Rank Hypercomplex
 * Adapter Layers").
 *
 * Formula: bottleneck adapters at Houlsby's positions (after attention and after the MLP, on the
 * sublayer output before the residual add): out -> out + W_up act(W_down out + b_down) + b_up,
 * where every projection is a low-rank PHM layer
 *   W = sum_{i=1..n} kron(A_i, B_i),  B_i = s_i t_i^T,
 * with A_i [n, n] the "shared Kronecker factors" (one set, shared by every PHM layer of the model,
 * down and up projections alike, as in the paper's n^3 term), and per-layer s_i [out/n, r],
 * t_i [in/n, r] (`rank` r, default 1 as the paper's Compacter). n is `phm` (default 4); it must
 * divide the model dim d and the bottleneck b. W is built from its factors at each forward pass
 * (n * out * in multiply-adds, small next to the model) and used as a dense [out, in] weight.
 *
 * Initialisation: A_i ~ U(-1/sqrt(n), 1/sqrt(n)); s_i, t_i ~ U(-c, c) with
 * c = sqrt(3) (r fanIn)^(-1/4), so W_down has the variance of a Kaiming-uniform layer; the up
 * projection's s_i = 0 (its t_i random), so W_up = 0, biases are 0 and the model is exactly the
 * frozen one at init, while gradients still reach s_i of W_up at the first step (zeroing both factors
 * would stall them).
 *
 * Trainable parameters: n^3 + L * 2 (2 r (d + b) + b + d) (each PHM layer in -> out has
 * r (in + out) factor values and `out` bias values). Not mergeable (the nonlinearity).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import { kaimingUniform, optionFlag, ownedVariablesMethod, trainableVariable } from "./common.ts";
import type { Rng } from "../models/util/rng.ts";
import {
  adapterSlots,
  affine,
  assertHookFree,
  type BottleneckAdapter,
  bottleneckOptions,
  installAdapters,
} from "./bottleneck.ts";

/** Compacter options. */
export const compacterSchema = z.object({
  ...bottleneckOptions,
  /** Number n of Kronecker summands; divides the model dim and the bottleneck. */
  phm: z.number().int().positive().default(4),
  /** Rank r of each B_i = s_i t_i^T. */
  rank: z.number().int().positive().default(1),
}).strict();

/** Compacter options after defaults. */
export type CompacterConfig = z.infer<typeof compacterSchema>;

/**
 * The PHM weight sum_i kron(A_i, s_i t_i^T) [n p, n q] from A [n, n, n], s [n, p, r], t [n, q, r].
 */
export function phmWeight(a: tf.Tensor, s: tf.Tensor, t: tf.Tensor): tf.Tensor2D {
  const n = a.shape[0];
  const [p, q] = [s.shape[1]!, t.shape[1]!];
  const b = tf.matMul(s as tf.Tensor3D, t as tf.Tensor3D, false, true); // [n, p, q]
  // W4[a, c, u, v] = sum_i A_i[a, c] B_i[u, v]
  const w4 = tf.matMul(tf.reshape(a, [n, n * n]), tf.reshape(b, [n, p * q]), true, false);
  const w = tf.transpose(tf.reshape(w4, [n, n, p, q]), [0, 2, 1, 3]);
  return tf.reshape(w, [n * p, n * q]) as tf.Tensor2D;
}

function factorInit(rng: Rng, size: number, rank: number, fanIn: number): Float32Array {
  const c = Math.sqrt(3) * Math.pow(rank * fanIn, -0.25);
  return rng.uniformArray(size, -c, c);
}

/** Compacter: PHM bottleneck adapters with shared Kronecker factors. */
export const compacter: MethodDefinition<CompacterConfig> = {
  name: "compacter",
  description:
    "adapters whose projections are sums of kron(A_i shared, low-rank B_i) (Karimi Mahabadi et al. 2021)",
  schema: compacterSchema,
  mergeable: false,
  // The paper's count: n^3 shared A_i plus, per PHM layer in -> out, r (in + out) + out.
  contract: {
    testOptions: { bottleneck: 8, phm: 4, rank: 2 },
    identityAtInit: true,
    parameterCount: (m, c) =>
      c.phm ** 3 + m.nLayers * 2 * (2 * c.rank * (m.dim + c.bottleneck) + c.bottleneck + m.dim),
  },
  apply: (model, config, ctx) => {
    assertHookFree(model, "sublayerOutput", "compacter");
    const d = model.config.dim;
    const { bottleneck: b, phm: n, rank: r } = config;
    if (d % n !== 0 || b % n !== 0) {
      throw new Error(
        `${optionFlag("phm", n)} must divide the model dim ${d} and ${optionFlag("bottleneck", b)}`,
      );
    }
    const vars = new Map<string, tf.Variable>();
    const shared = trainableVariable(kaimingUniform(ctx.rng.fork("compacter.A"), [n * n, n]), [n, n, n]);
    vars.set("compacter.phm_rule", shared);
    /** One PHM layer in -> out; returns W's factors and bias. */
    const phmLayer = (name: string, inF: number, outF: number, zeroOut: boolean) => {
      const s = trainableVariable(
        zeroOut ? new Float32Array(outF * r) : factorInit(ctx.rng.fork(`${name}.s`), outF * r, r, inF),
        [n, outF / n, r],
      );
      const t = trainableVariable(factorInit(ctx.rng.fork(`${name}.t`), inF * r, r, inF), [n, inF / n, r]);
      const bias = trainableVariable(new Float32Array(outF), [outF]);
      vars.set(`${name}.s`, s);
      vars.set(`${name}.t`, t);
      vars.set(`${name}.bias`, bias);
      return (x: tf.Tensor2D) => affine(x, phmWeight(shared, s, t), bias);
    };
    const adapters = new Map<string, BottleneckAdapter>();
    for (const { key } of adapterSlots(model)) {
      adapters.set(key, {
        down: phmLayer(`${key}.down`, d, b, false),
        up: phmLayer(`${key}.up`, b, d, true),
      });
    }
    const restore = installAdapters(model, adapters, config.activation, "compacter");
    return ownedVariablesMethod(vars, restore, { nominalRank: r });
  },
};
