/**
 * Structure-Aware Intrinsic Dimension, SAID (Aghajanyan, Zettlemoyer & Gupta, 2021, "Intrinsic
 * Dimensionality Explains the Effectiveness of Language Model Fine-Tuning"), on the Fastfood
 * subspace of Li et al. (2018, "Measuring the Intrinsic Dimension of Objective Landscapes"),
 * normalised as their reference code (`fastfood_torched`; see {@link FastfoodProjection}).
 *
 * Formula: the whole adaptation is one trainable vector of `intrinsicDim` d values, split into
 * z [d - m] and one scale lambda_i per adapted layer (m = number of target linears; SAID's "one
 * extra scalar per layer", counted inside d). Each target weight W_i [out, in], D_i = out * in
 * values, becomes
 *   W_i = W_i0 + lambda_i * reshape(F_i z),   F_i = (H G_i Pi_i H B_i) / (sigma_i sqrt(D_i))
 * restricted to its first D_i rows, where D'_i is max(D_i, d - m) padded to a power of two (z is
 * zero-padded to D'_i), H the D'_i x D'_i Walsh-Hadamard matrix (Sylvester order, unnormalised),
 * B_i a random +-1 diagonal, Pi_i a random permutation, G_i a N(0, 1) diagonal and
 * sigma_i = ||G_i||_2. "Per layer-block" means per target linear: each has its own frozen B, G, Pi
 * and sees the same z.
 *
 * Initialisation: z = 0 (so the model is exactly the frozen one) and lambda_i = 1 (with both zero
 * every gradient would vanish); B, G, Pi from `new Rng(ctx.rng.seed).fork(name + ".fastfood")`.
 *
 * Trainable parameters: exactly d (= intrinsicDim). Mergeable: W_i0 + lambda_i F_i z is
 * materialised into a plain frozen weight. State: z, lambda and the seed of the Fastfood matrices
 * (`said.fastfood_seed`, rebuilt on load).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import { Rng } from "../models/util/rng.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";
import type { MethodDefinition } from "./types.ts";
import { optionFlag, stateOf, trainableVariable, wrapLinears } from "./common.ts";
import { selectTargets } from "./targets.ts";

const SEED_KEY = "said.fastfood_seed";

function seedToArray(seed: number): Float32Array {
  return Float32Array.of(Math.floor(seed / 65536), seed % 65536);
}

/** SAID options. */
export const saidSchema = z.object({
  /** Target preset or pattern (see targets.ts). */
  targets: z.string().default("q+v"),
  /**
   * Intrinsic dimension d: the total number of trainable values (z plus one lambda per layer).
   * 100 is sized for the tiny test models; the paper measures d90 in the hundreds to thousands for
   * real models (pass e.g. --opt intrinsicDim=1000), at the cost of O(D' log D') work per target per
   * step.
   */
  intrinsicDim: z.number().int().positive().default(100),
}).strict();

/** SAID options after defaults. */
export type SaidConfig = z.infer<typeof saidSchema>;

/** Smallest power of two >= n. */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Fast Walsh-Hadamard transform H x of a vector whose length is a power of two (unnormalised,
 * Sylvester order), in tfjs ops: log2 n butterfly stages on a [.., 2, ..] reshape, differentiable,
 * O(n log n).
 */
export function fwht(x: tf.Tensor1D): tf.Tensor1D {
  const n = x.shape[0];
  if (n !== nextPow2(n)) throw new Error(`fwht needs a power-of-two length, got ${n}`);
  let y: tf.Tensor = x;
  for (let h = 1; h < n; h *= 2) {
    const y3 = tf.reshape(y, [n / (2 * h), 2, h]);
    const a = tf.slice(y3, [0, 0, 0], [n / (2 * h), 1, h]);
    const b = tf.slice(y3, [0, 1, 0], [n / (2 * h), 1, h]);
    y = tf.concat([tf.add(a, b), tf.sub(a, b)], 1);
  }
  return tf.reshape(y, [n]);
}

/**
 * A frozen Fastfood projection R^dIn -> R^dOut: F z = (H G Pi H B z) / (sigma sqrt(dOut)), z
 * zero-padded to D' = max(dIn, dOut) padded to a power of two, the first dOut rows kept (see the
 * module doc), so F z costs O(D' log D') per forward.
 *
 * Normalisation on sizes that are not powers of two, as the reference code (Li et al.'s and
 * Aghajanyan et al.'s `fastfood_torched`: divisor sqrt(LL ||G||^2) times sqrt(DD / LL), i.e.
 * ||G|| sqrt(DD) with DD the layer's size): every row of the unscaled D' x D' transform has
 * squared norm D' sigma^2, so the kept dOut rows of F have squared Frobenius norm exactly D' and a
 * column of the truncated F has squared norm 1 on average (exactly 1 when dOut = D'). An earlier
 * version divided by sqrt(D'), giving the untruncated columns unit norm and the kept ones dOut / D'
 * on average (a smaller effective step on layers whose size is not a power of two).
 *
 * The permutation is a gather whose gradient is the inverse gather (a custom gradient: tfjs's own
 * gather gradient needs a kernel the wasm backend lacks).
 */
export class FastfoodProjection {
  readonly dIn: number;
  readonly dOut: number;
  /** Padded size D' (a power of two). */
  readonly size: number;
  readonly #b: tf.Tensor1D;
  /** G / (sigma sqrt(dOut)): the reference's normalisation by the kept size (see the class doc). */
  readonly #g: tf.Tensor1D;
  readonly #permute: (x: tf.Tensor1D) => tf.Tensor1D;
  readonly #owned: tf.Tensor[];

  constructor(dIn: number, dOut: number, rng: Rng) {
    this.dIn = dIn;
    this.dOut = dOut;
    const n = nextPow2(Math.max(dIn, dOut));
    this.size = n;
    const b = Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1));
    const perm = rng.shuffle([...Array(n).keys()]);
    const inv = new Int32Array(n);
    perm.forEach((p, i) => (inv[p] = i));
    const g = rng.normalArray(n);
    const sigma = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    const scale = 1 / (sigma * Math.sqrt(dOut));
    this.#b = tf.tensor1d(b);
    this.#g = tf.tensor1d(g.map((v) => v * scale));
    const permT = tf.tensor1d(perm, "int32");
    const invT = tf.tensor1d(inv, "int32");
    this.#owned = [this.#b, this.#g, permT, invT];
    this.#permute = tf.customGrad((x, _save) => ({
      value: tf.gather(x as tf.Tensor1D, permT),
      gradFunc: (dy: tf.Tensor) => tf.gather(dy, invT),
    })) as (x: tf.Tensor1D) => tf.Tensor1D;
  }

  /** F z [dOut] for z [dIn]. */
  project(z: tf.Tensor1D): tf.Tensor1D {
    const x = this.dIn < this.size ? tf.pad(z, [[0, this.size - this.dIn]]) : z;
    const v = fwht(tf.mul(this.#permute(fwht(tf.mul(x, this.#b))), this.#g));
    return this.dOut < this.size ? tf.slice(v, [0], [this.dOut]) : v;
  }

  dispose(): void {
    tf.dispose(this.#owned);
  }
}

/** A linear layer W0 + lambda * reshape(F z) on a frozen base. */
export class SaidLinear extends AdaptedLinear {
  /** Its frozen Fastfood projection (replaced when a state with another seed is loaded). */
  projection: FastfoodProjection;
  readonly #z: tf.Variable;
  readonly #lambdas: tf.Variable;
  readonly #index: number;

  constructor(
    base: LinearModule,
    projection: FastfoodProjection,
    z: tf.Variable,
    lambdas: tf.Variable,
    index: number,
  ) {
    super(base);
    this.projection = projection;
    this.#z = z;
    this.#lambdas = lambdas;
    this.#index = index;
  }

  /** The update lambda_i reshape(F_i z) [out, in]. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const ray = tf.reshape(this.projection.project(this.#z as tf.Tensor1D), [
        this.outFeatures,
        this.inFeatures,
      ]);
      return tf.mul(ray, tf.slice(this.#lambdas, [this.#index], [1])) as tf.Tensor2D;
    });
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(this.base.forward(x), tf.matMul(x, this.delta(), false, true)) as tf.Tensor2D;
  }
}

/** SAID: a d-dimensional Fastfood subspace with one scale per layer. */
export const intrinsicSaid: MethodDefinition<SaidConfig> = {
  name: "intrinsic-said",
  description:
    "train d values projected into the targets through Fastfood, one scale per layer (Aghajanyan et al. 2021)",
  schema: saidSchema,
  mergeable: true,
  // The whole adaptation is the d-vector (z and one lambda per layer): exactly d values.
  contract: {
    testOptions: { intrinsicDim: 40, targets: "q+v" },
    identityAtInit: true,
    parameterCount: (_m, c) => c.intrinsicDim,
  },
  defaultLr: 0.05,
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const m = targets.length;
    const dz = config.intrinsicDim - m;
    if (dz < 1) {
      throw new Error(
        `${
          optionFlag("intrinsicDim", config.intrinsicDim)
        } must exceed the number of adapted layers (${m}): SAID spends one scale per layer`,
      );
    }
    const z = trainableVariable(new Float32Array(dz), [dz]);
    const lambdas = trainableVariable(new Float32Array(m).fill(1), [m]);
    const vars = new Map([["said.z", z], ["said.lambda", lambdas]]);
    const project = (base: LinearModule, name: string, seed: number) =>
      new FastfoodProjection(dz, base.outFeatures * base.inFeatures, new Rng(seed).fork(`${name}.fastfood`));
    let seed = ctx.rng.seed;
    let index = 0;
    const { wrapped, restore } = wrapLinears(
      model,
      targets,
      (base, name) => new SaidLinear(base, project(base, name, seed), z, lambdas, index++),
    );
    const base = adaptedMethod({ model, ctx, vars, wrapped, restore });
    return {
      ...base,
      // The projections are frozen random matrices: the state carries their seed (two 16-bit
      // halves, exact in float32) instead of their values.
      state: () => new Map([...stateOf(vars), [SEED_KEY, { data: seedToArray(seed), shape: [2] }]]),
      loadState: (t) => {
        base.loadState(t);
        const saved = t.get(SEED_KEY);
        if (!saved) {
          throw new Error(`adapter file lacks tensor '${SEED_KEY}'; was it saved by intrinsic-said?`);
        }
        const s = saved.data[0] * 65536 + saved.data[1];
        if (s === seed) return;
        seed = s;
        for (const [name, layer] of wrapped) {
          layer.projection.dispose();
          layer.projection = project(layer.base, name, seed);
        }
      },
      dispose: () => {
        base.dispose();
        wrapped.forEach((l) => l.projection.dispose());
      },
    };
  },
};
