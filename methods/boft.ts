/**
 * BOFT: butterfly orthogonal fine-tuning (Liu et al. 2024, "Parameter-Efficient Orthogonal
 * Finetuning via Butterfly Factorization"), as Hugging Face PEFT's `BOFTConfig` /
 * `boft.layer.Linear` (PEFT 0.20).
 *
 * Formula: y = s ⊙ (W M^T x) + b, i.e. PEFT's row-vector forward (x M) W^T, rescaled per output by
 * s [out] (PEFT `boft_s`) with the bias added after the scaling. M = M_m ... M_1 M_0 is a product
 * of m + 1 = `nButterflyFactor` butterfly factors M_i = P_i diag(R_i1, ..., R_i,nb) P_i^T: each a
 * block-diagonal matrix of nb orthogonal bs x bs blocks R = Cayley(S) = (I - S)(I + S)^{-1} with
 * S = (A - A^T) / 2 from a full trainable bs x bs matrix A (PEFT `boft_R` [m+1, nb, bs, bs]),
 * conjugated by PEFT's `block_butterfly_perm` permutation P_i (P_0 = I, so one factor is OFT with
 * blocks of bs). M is orthogonal. Merge: W' = s ⊙ (W M^T), the bias unchanged.
 *
 * Initialisation (PEFT `reset_boft_parameters`): A = 0 (R = I) and s = 1, so the adapted model
 * equals the frozen one.
 *
 * Sizes (PEFT `update_layer`): exactly one of `blockSize` (PEFT `boft_block_size`, default 4) and
 * `blockNum` (`boft_block_num`, default 0) is non-zero, and it must divide in_features (an error,
 * as in PEFT); with more than one factor, blocks and block counts must be even and
 * in_features divisible by bs 2^m.
 *
 * Trainable parameters per adapted layer: (m + 1) nb bs^2 + out, with nb bs = in.
 *
 * Difference from PEFT: PEFT computes the butterfly factors only with its CUDA extension and
 * otherwise resets `boft_n_butterfly_factor` to 1 with a warning; here the product is computed for
 * any factor count with plain tensor ops (gathers for the permutations), as PEFT with the
 * extension. No multiplicative block dropout (PEFT's default is 0).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { namedArray, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";
import { blockDiagRight, cayleyExact } from "./orthogonal.ts";

/** BOFT options (PEFT `BOFTConfig` names in camelCase, with PEFT's defaults). */
export const boftSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Block size bs (PEFT `boft_block_size`); 0: derived from blockNum. */
  blockSize: z.number().int().nonnegative().default(4),
  /** Blocks per factor nb (PEFT `boft_block_num`); 0: derived from blockSize. */
  blockNum: z.number().int().nonnegative().default(0),
  /** Number of butterfly factors m + 1 (PEFT `boft_n_butterfly_factor`). */
  nButterflyFactor: z.number().int().positive().default(1),
}).strict().refine((c) => (c.blockSize !== 0) !== (c.blockNum !== 0), {
  message:
    "set exactly one of blockSize and blockNum to a non-zero value (e.g. --opt blockNum=8 --opt blockSize=0)",
  path: ["blockSize"],
});

/** BOFT options after defaults. */
export type BoftConfig = z.infer<typeof boftSchema>;

/**
 * A layer's block size and count, checked as PEFT's `update_layer` checks them (one-line errors
 * naming the option).
 */
export function boftBlocks(inFeatures: number, c: Omit<BoftConfig, "targets">): { bs: number; nb: number } {
  const m = c.nButterflyFactor - 1;
  let bs: number, nb: number;
  if (c.blockSize === 0) {
    if (inFeatures % c.blockNum !== 0) {
      throw new Error(`boft: in_features ${inFeatures} is not divisible by --opt blockNum=${c.blockNum}`);
    }
    if (m > 0 && (m > Math.floor(Math.log2(c.blockNum)) || c.blockNum % 2 ** m !== 0)) {
      throw new Error(
        `boft: --opt blockNum=${c.blockNum} must be a multiple of 2^(nButterflyFactor-1) = ${2 ** m}`,
      );
    }
    nb = c.blockNum;
    bs = inFeatures / nb;
  } else {
    if (inFeatures % c.blockSize !== 0) {
      throw new Error(`boft: in_features ${inFeatures} is not divisible by --opt blockSize=${c.blockSize}`);
    }
    if (m > 0 && inFeatures % (c.blockSize * 2 ** m) !== 0) {
      throw new Error(
        `boft: in_features ${inFeatures} is not divisible by blockSize * 2^(nButterflyFactor-1) = ${
          c.blockSize * 2 ** m
        }`,
      );
    }
    bs = c.blockSize;
    nb = inFeatures / bs;
  }
  if (m > 0 && (nb % 2 !== 0 || bs % 2 !== 0)) {
    throw new Error(
      `boft: with --opt nButterflyFactor=${m + 1}, block size ${bs} and count ${nb} must be even`,
    );
  }
  return { bs, nb };
}

/**
 * PEFT's `block_butterfly_perm(n, b, r, n_butterfly_factor)`: within each chunk of n / b
 * entries, groups of r entries are reordered even-numbered groups first, then odd ones. Identity
 * when n_butterfly_factor is 0.
 */
export function butterflyPerm(n: number, b: number, r: number, nButterflyFactor: number): number[] {
  const indices = Array.from({ length: n }, (_, i) => i);
  if (nButterflyFactor === 0) return indices;
  if (b * r * 2 > n) throw new Error("boft: invalid number of blocks");
  const chunk = n / b;
  const step = chunk / r;
  const seq = [
    ...Array.from({ length: Math.ceil(step / 2) }, (_, i) => 2 * i),
    ...Array.from({ length: Math.floor(step / 2) }, (_, i) => 2 * i + 1),
  ];
  const order: number[] = [];
  for (const pos of seq) for (let k = 0; k < r; k++) order.push(pos * r + k);
  const out: number[] = [];
  for (let i = 0; i < n; i += chunk) for (const o of order) out.push(indices[i + o]);
  return out;
}

/** A frozen linear layer rotated by a butterfly of orthogonal block-diagonal factors and rescaled. */
export class BoftLinear extends AdaptedLinear {
  /** perm_i and its inverse per factor (as int32 index tensors for gathers). */
  readonly #perms: { perm: tf.Tensor1D; inv: tf.Tensor1D }[];

  constructor(
    base: LinearModule,
    /** A [m+1, nb, bs, bs] (PEFT `boft_R`). */
    readonly r: tf.Variable,
    /** s [out, 1] (PEFT `boft_s`). */
    readonly s: tf.Variable,
    readonly perms: number[][],
  ) {
    super(base);
    this.#perms = perms.map((p) => {
      const inv = new Array<number>(p.length);
      p.forEach((v, i) => (inv[v] = i));
      return { perm: tf.tensor1d(p, "int32"), inv: tf.tensor1d(inv, "int32") };
    });
  }

  /** The orthogonal blocks [m+1, nb, bs, bs] (caller disposes). */
  blocks(): tf.Tensor4D {
    return tf.tidy(() => {
      const [f, nb, bs] = this.r.shape;
      const flat = tf.reshape(this.r, [f * nb, bs, bs]) as tf.Tensor3D;
      const skew = tf.mul(tf.sub(flat, tf.transpose(flat, [0, 2, 1])), 0.5) as tf.Tensor3D;
      return tf.reshape(cayleyExact(skew), [f, nb, bs, bs]) as tf.Tensor4D;
    });
  }

  /**
   * Rows of x [n, in] times M (`transpose` false: x M = x M_m ... M_0) or times M^T
   * (x M_0^T ... M_m^T); x M_i = ((x P_i) B_i) P_i^T with (x P)_j = x_{inv[j]}, (y P^T)_j = y_{perm[j]}.
   */
  #apply(x: tf.Tensor2D, blocks: tf.Tensor4D, transpose: boolean): tf.Tensor2D {
    const f = blocks.shape[0];
    let y = x;
    for (let k = 0; k < f; k++) {
      const i = transpose ? k : f - 1 - k;
      const bi = tf.squeeze(tf.slice(blocks, [i, 0, 0, 0], [1, -1, -1, -1]), [0]) as tf.Tensor3D;
      y = tf.gather(y, this.#perms[i].inv, 1);
      y = blockDiagRight(y, bi, transpose);
      y = tf.gather(y, this.#perms[i].perm, 1);
    }
    return y;
  }

  /** M [in, in] (caller disposes). */
  rotation(): tf.Tensor2D {
    return tf.tidy(() => this.#apply(tf.eye(this.inFeatures) as tf.Tensor2D, this.blocks(), false));
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const y = this.base.forward(this.#apply(x, this.blocks(), false));
    const b = this.base.bias;
    const scaled = tf.mul(b ? tf.sub(y, b) : y, tf.reshape(this.s, [1, -1])) as tf.Tensor2D;
    return b ? tf.add(scaled, b) : scaled;
  }

  /** dW = s ⊙ (W M^T) - W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.base.denseWeight();
      return tf.sub(tf.mul(this.#apply(w, this.blocks(), true), this.s), w);
    });
  }

  /** Free the permutation indices. */
  override disposeOwned(): void {
    tf.dispose(this.#perms.flatMap((p) => [p.perm, p.inv]));
  }
}

/** BOFT. */
export const boft: MethodDefinition<BoftConfig> = {
  name: "boft",
  description:
    "butterfly product of orthogonal block-diagonal rotations of the input, output scale (Liu et al. 2024; PEFT)",
  schema: boftSchema as unknown as z.ZodType<BoftConfig>,
  mergeable: true,
  // PEFT BOFT: boft_R [m+1, nb, bs, bs] zeros and boft_s [out, 1] ones at init (identity).
  contract: {
    testOptions: { targets: "all-linear", blockSize: 2, nButterflyFactor: 2 },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const { bs, nb } = boftBlocks(s.in, c);
        return c.nButterflyFactor * nb * bs * bs + s.out;
      }),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [name, s] of targetShapes(m, c.targets)) {
        const { bs, nb } = boftBlocks(s.in, c);
        out.set(`${name}.boft_R`, [c.nButterflyFactor, nb, bs, bs]);
        out.set(`${name}.boft_s`, [s.out, 1]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const f = config.nButterflyFactor;
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const { bs, nb } = boftBlocks(base.inFeatures, config);
      const perms = Array.from(
        { length: f },
        (_, i) => butterflyPerm(base.inFeatures, nb / 2 ** i, bs / 2, f - 1),
      );
      const r = trainableVariable(new Float32Array(f * nb * bs * bs), [f, nb, bs, bs]);
      const s = trainableVariable(new Float32Array(base.outFeatures).fill(1), [base.outFeatures, 1]);
      vars.set(`${name}.boft_R`, r);
      vars.set(`${name}.boft_s`, s);
      return new BoftLinear(base, r, s, perms);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore });
    return {
      ...applied,
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          tensors.set(`${peftModuleName(name)}.boft_R`, namedArray(l.r));
          // boft_s runs over the outputs: q/k rows in the checkpoint's order.
          tensors.set(`${peftModuleName(name)}.boft_s`, outputRows(name, l.s, model.config));
        }
        return {
          config: {
            peft_type: "BOFT",
            task_type: "CAUSAL_LM",
            boft_block_size: config.blockSize,
            boft_block_num: config.blockNum,
            boft_n_butterfly_factor: config.nButterflyFactor,
            boft_dropout: 0,
            ...peftTargetFields(targets, model.config.nLayers),
            fan_in_fan_out: false,
            bias: "none",
            init_weights: true,
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
