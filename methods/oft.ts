/**
 * OFT: orthogonal fine-tuning (Qiu et al. 2023, "Controlling Text-to-Image Diffusion by Orthogonal
 * Finetuning"; Qiu et al. 2025, "Orthogonal Finetuning Made Scalable"), as Hugging Face PEFT's
 * `OFTConfig` / `oft.layer.Linear` (PEFT 0.20).
 *
 * Formula: the input of a frozen linear layer is rotated block by block, y = W (R x) + b with
 * R = diag(R_1, ..., R_nb) of nb = in / bs orthogonal blocks of size bs (PEFT's `oft_block_size`,
 * or `r` blocks; adjusted per layer as {@link oftBlocks}), each R_i the Cayley(-Neumann) transform
 * ({@link oftRotation}) of a skew-symmetric Q_i (its strict upper triangle, bs (bs - 1) / 2 values,
 * is the trainable `oft_R.weight` row). In PEFT's row-vector form the rotated input is x R, so the
 * merged weight is W' = W R^T (PEFT's `merge`: (R W^T)^T); the bias is not rotated. `blockShare`:
 * one Q shared by all blocks of a layer; `coft`: each Q_i kept in a Frobenius ball
 * ({@link OftLinear.project}).
 *
 * Initialisation (PEFT `reset_oft_parameters`, init_weights=True): Q = 0, so R = I and the adapted
 * model equals the frozen one.
 *
 * Trainable parameters per adapted layer: (blockShare ? 1 : in / bs) * bs (bs - 1) / 2.
 * Mergeable: W' = W R^T.
 *
 * Differences from PEFT: no multiplicative module dropout (PEFT's default is 0 anyway); the exact
 * Cayley transform inverts each block in float64 on the CPU (tfjs has no solve op), with the exact
 * gradient; COFT projects after every update instead of before each forward (the same weights).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";
import { blockDiagRight, cayleyExact, cayleyNeumann, skewSize, skewSymmetric } from "./orthogonal.ts";

/** OFT options (PEFT `OFTConfig` names in camelCase, with PEFT's defaults). */
export const oftSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Number of blocks per layer (PEFT `r`); 0: derived from blockSize. */
  r: z.number().int().nonnegative().default(0),
  /** Block size (PEFT `oft_block_size`); 0: derived from r. */
  blockSize: z.number().int().nonnegative().default(32),
  /** Constrained OFT: keep each Q within a Frobenius ball of radius eps / sqrt(rows). */
  coft: z.boolean().default(false),
  /** COFT's radius. */
  eps: z.number().positive().default(6e-5),
  /** One Q shared by all blocks of a layer. */
  blockShare: z.boolean().default(false),
  /** Truncated Cayley-Neumann series instead of the exact Cayley transform. */
  useCayleyNeumann: z.boolean().default(true),
  /** Terms of the Cayley-Neumann series. */
  numCayleyNeumannTerms: z.number().int().positive().default(5),
}).strict().refine((c) => (c.r !== 0) !== (c.blockSize !== 0), {
  message: "set exactly one of r and blockSize to a non-zero value (e.g. --opt r=4 --opt blockSize=0)",
  path: ["r"],
});

/** OFT options after defaults. */
export type OftConfig = z.infer<typeof oftSchema>;

/**
 * PEFT's `adjust_oft_parameters(in_features, params)`: a block size or count that does not divide
 * `n` moves to the nearest divisor (the smaller one on ties); values >= n become n.
 */
export function adjustOftParameter(n: number, p: number): number {
  if (p >= n) return n;
  let higher = p;
  while (higher <= n && n % higher !== 0) higher++;
  let lower = p;
  while (lower > 1 && n % lower !== 0) lower--;
  return p - lower <= higher - p ? lower : higher;
}

/**
 * A layer's block size and block count from the options (PEFT `update_layer`): exactly one of `r`
 * (blocks per layer) and `blockSize` is non-zero (PEFT defaults r = 0, oft_block_size = 32); when it
 * does not divide the layer's in_features it is moved to the nearest divisor as PEFT's
 * `adjust_oft_parameters` does ({@link adjustOftParameter}: ties to the smaller; at least
 * in_features -> in_features), per layer.
 */
export function oftBlocks(
  inFeatures: number,
  c: Pick<OftConfig, "r" | "blockSize">,
): { bs: number; nb: number } {
  if (c.r === 0) {
    const bs = inFeatures % c.blockSize === 0 ? c.blockSize : adjustOftParameter(inFeatures, c.blockSize);
    return { bs, nb: inFeatures / bs };
  }
  const nb = inFeatures % c.r === 0 ? c.r : adjustOftParameter(inFeatures, c.r);
  return { bs: inFeatures / nb, nb };
}

/**
 * The orthogonal blocks [nb, bs, bs] of Q vectors [rows, bs(bs-1)/2] (rows 1 when shared).
 * R_i = Cayley(Q_i): with `useCayleyNeumann` (PEFT's default since 0.18, 5 terms) the truncated
 * series R = I + 2 Q + 2 Q^2 + 2 Q^3 + Q^4 (nearly orthogonal for small Q; the sign convention is
 * (I + Q)(I - Q)^{-1}, the transpose of the exact branch's, as in PEFT); otherwise the exact
 * (I - Q)(I + Q)^{-1}, orthogonal with det 1.
 */
export function oftRotation(q: tf.Tensor2D, bs: number, nb: number, c: OftConfig): tf.Tensor3D {
  return tf.tidy(() => {
    const skew = skewSymmetric(q, bs);
    const r = c.useCayleyNeumann ? cayleyNeumann(skew, c.numCayleyNeumannTerms) : cayleyExact(skew);
    return c.blockShare ? tf.tile(r, [nb, 1, 1]) as tf.Tensor3D : r;
  });
}

/** A frozen linear layer whose input is rotated by a block-diagonal orthogonal matrix. */
export class OftLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** Q's strict upper triangles [rows, bs(bs-1)/2] (PEFT `oft_R.weight`). */
    readonly q: tf.Variable,
    readonly bs: number,
    readonly nb: number,
    readonly config: OftConfig,
  ) {
    super(base);
  }

  /** The blocks R_i [nb, bs, bs] (caller disposes). */
  rotation(): tf.Tensor3D {
    return oftRotation(this.q as tf.Tensor2D, this.bs, this.nb, this.config);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return this.base.forward(blockDiagRight(x, this.rotation()));
  }

  /** dW = W R^T - W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.base.denseWeight();
      return tf.sub(blockDiagRight(w, this.rotation(), true), w);
    });
  }

  /**
   * COFT (constrained OFT), run after every update: project each Q_i onto the Frobenius ball
   * ||Q_i||_F <= eps / sqrt(rows) (rows = number of Q vectors of the layer), as PEFT's
   * `_project_batch` does before each forward; the sequence of weights used is the same.
   */
  project(): void {
    tf.tidy(() => {
      const rows = this.q.shape[0];
      const radius = this.config.eps / Math.sqrt(rows);
      // ||Q_i||_F of the full skew matrix is sqrt(2) times the norm of its upper triangle.
      const norm = tf.mul(tf.norm(this.q, "euclidean", 1, true), Math.SQRT2);
      const factor = tf.where(tf.lessEqual(norm, radius), tf.onesLike(norm), tf.div(radius, norm));
      this.q.assign(tf.mul(this.q, factor));
    });
  }
}

/** OFT. */
export const oft: MethodDefinition<OftConfig> = {
  name: "oft",
  description:
    "block-diagonal orthogonal rotation of the input, Cayley(-Neumann) blocks (Qiu et al. 2023; PEFT OFT)",
  schema: oftSchema as unknown as z.ZodType<OftConfig>,
  mergeable: true,
  // PEFT OFT: oft_R.weight [rows, bs(bs-1)/2], rows = in/bs (1 with block_share); Q = 0 at init.
  contract: {
    testOptions: { targets: "all-linear", blockSize: 4 },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const { bs, nb } = oftBlocks(s.in, c);
        return (c.blockShare ? 1 : nb) * (bs * (bs - 1)) / 2;
      }),
    peftTensors: (m, c) =>
      new Map(
        [...targetShapes(m, c.targets)].map(([name, s]) => {
          const { bs, nb } = oftBlocks(s.in, c);
          return [`${name}.oft_R.weight`, [c.blockShare ? 1 : nb, (bs * (bs - 1)) / 2]];
        }),
      ),
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const { bs, nb } = oftBlocks(base.inFeatures, config);
      if (bs < 2) {
        throw new Error(
          `oft: blocks of size ${bs} on ${name} have no rotation; use --opt blockSize=4 or more`,
        );
      }
      const rows = config.blockShare ? 1 : nb;
      const q = trainableVariable(new Float32Array(rows * skewSize(bs)), [rows, skewSize(bs)]);
      vars.set(`${name}.oft_R`, q);
      return new OftLinear(base, q, bs, nb, config);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore });
    return {
      ...applied,
      afterStep: config.coft ? () => wrapped.forEach((l) => l.project()) : undefined,
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          tensors.set(`${peftModuleName(name)}.oft_R.weight`, {
            data: l.q.dataSync() as Float32Array,
            shape: [...l.q.shape],
          });
        }
        return {
          config: {
            peft_type: "OFT",
            task_type: "CAUSAL_LM",
            // The parametrisation PEFT >= 0.18 expects for use_cayley_neumann (check_kwargs).
            peft_version: "0.18.0",
            r: config.r,
            oft_block_size: config.blockSize,
            module_dropout: 0,
            ...peftTargetFields(targets, model.config.nLayers),
            fan_in_fan_out: false,
            bias: "none",
            init_weights: true,
            coft: config.coft,
            eps: config.eps,
            block_share: config.blockShare,
            use_cayley_neumann: config.useCayleyNeumann,
            num_cayley_neumann_terms: config.numCayleyNeumannTerms,
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
