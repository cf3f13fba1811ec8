/**
 * HRA: Householder reflection adaptation (Yuan et al. 2024, "Bridging The Gap between Low-rank and
 * Orthogonal Adaptation via Householder Reflection Adaptation"), as Hugging Face PEFT's
 * `HRAConfig` / `hra.layer.HRALinear` (PEFT 0.20).
 *
 * Formula: W' = W H with H = H_1 H_2 ... H_r, H_i = I - 2 u_i u_i^T / ||u_i||^2 for the r columns of
 * U [in, r] (PEFT `hra_u`), so y = W H x + b: the input is reflected r times (the reflections in
 * reverse order, x H^T = x H_r ... H_1 in row-vector form) before the frozen layer, which costs
 * O(r in) per row instead of materialising H. With `applyGS` (PEFT `apply_GS`) the columns are
 * first orthonormalised by Gram-Schmidt into Q and H = I - 2 Q Q^T. H is orthogonal, and
 * W H - W has rank at most r. The bias is not changed.
 *
 * Initialisation (PEFT `reset_hra_parameters`): for even r, half the columns are drawn
 * Kaiming-uniform on an [in, r/2] tensor (bound 1/sqrt(r/2), PyTorch's fan-in of that shape) and
 * each is repeated twice (`repeat_interleave`), so consecutive reflections cancel, H = I and the
 * adapted model equals the frozen one; for odd r, PEFT warns and draws all r columns
 * Kaiming-uniform (bound 1/sqrt(r)), which is not the identity. With `applyGS`, H = I - 2 Q Q^T is
 * never the identity, and PEFT's paired columns would make Gram-Schmidt divide 0 by 0 (NaN in
 * PEFT too), so applyGS draws all r columns independently as PEFT's `init_weights=False` does
 * (Kaiming-uniform on [in, r]); a deliberate difference from PEFT's default path.
 *
 * Trainable parameters per adapted layer: in * r. Mergeable: W' = W H.
 * Options: `rank` r (PEFT `r`, default 8), `targets` (PEFT's Llama default q_proj, v_proj),
 * `applyGS` (default false).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { Rng } from "../models/util/rng.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** HRA options. */
export const hraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Number r of Householder reflections (PEFT `r`). */
  rank: z.number().int().positive().default(8),
  /** Orthonormalise the reflection vectors by Gram-Schmidt (PEFT `apply_GS`). */
  applyGS: z.boolean().default(false),
}).strict();

/** HRA options after defaults. */
export type HraConfig = z.infer<typeof hraSchema>;

/**
 * PEFT's initial U [in, r], row-major: even r, r/2 Kaiming-uniform columns (bound 1/sqrt(r/2)),
 * each repeated twice; odd r or not `paired`, r Kaiming-uniform columns (bound 1/sqrt(r)).
 */
export function hraInit(rng: Rng, inFeatures: number, r: number, paired = true): Float32Array {
  const out = new Float32Array(inFeatures * r);
  if (r % 2 !== 0 || !paired) {
    const bound = 1 / Math.sqrt(r);
    return rng.uniformArray(inFeatures * r, -bound, bound);
  }
  const half = r / 2;
  const bound = 1 / Math.sqrt(half);
  const h = rng.uniformArray(inFeatures * half, -bound, bound);
  for (let i = 0; i < inFeatures; i++) {
    for (let j = 0; j < half; j++) {
      out[i * r + 2 * j] = h[i * half + j];
      out[i * r + 2 * j + 1] = h[i * half + j];
    }
  }
  return out;
}

/** Gram-Schmidt on the columns of U [in, r] (PEFT's loop, classical form): Q [in, r] orthonormal. */
export function gramSchmidt(u: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const r = u.shape[1];
    const cols: tf.Tensor2D[] = [];
    for (let i = 0; i < r; i++) {
      let c = tf.slice(u, [0, i], [-1, 1]) as tf.Tensor2D;
      for (const q of cols) c = tf.sub(c, tf.mul(tf.sum(tf.mul(q, c)), q));
      cols.push(tf.div(c, tf.norm(c)));
    }
    return tf.concat(cols, 1) as tf.Tensor2D;
  });
}

/** A frozen linear layer whose weight is multiplied on the right by r Householder reflections. */
export class HraLinear extends AdaptedLinear {
  constructor(base: LinearModule, readonly u: tf.Variable, readonly applyGS: boolean) {
    super(base);
  }

  /** Rows of x [n, in] times H (`transpose`: times H^T), reflection by reflection. */
  #reflect(x: tf.Tensor2D, transpose: boolean): tf.Tensor2D {
    const u = this.u as tf.Tensor2D;
    if (this.applyGS) {
      const q = gramSchmidt(u); // H = I - 2 Q Q^T is symmetric
      return tf.sub(x, tf.mul(tf.matMul(tf.matMul(x, q), q, false, true), 2));
    }
    const unit = tf.div(u, tf.norm(u, "euclidean", 0, true)) as tf.Tensor2D;
    const r = u.shape[1];
    let y = x;
    // x H = x H_1 ... H_r; x H^T = x H_r ... H_1 (each H_i symmetric).
    for (let k = 0; k < r; k++) {
      const i = transpose ? r - 1 - k : k;
      const ui = tf.slice(unit, [0, i], [-1, 1]) as tf.Tensor2D;
      y = tf.sub(y, tf.mul(tf.matMul(tf.matMul(y, ui), ui, false, true), 2));
    }
    return y;
  }

  /** H [in, in] (caller disposes). */
  householder(): tf.Tensor2D {
    return tf.tidy(() => this.#reflect(tf.eye(this.inFeatures) as tf.Tensor2D, false));
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return this.base.forward(this.#reflect(x, true));
  }

  /** dW = W H - W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.base.denseWeight();
      return tf.sub(this.#reflect(w, false), w);
    });
  }
}

/** HRA. */
export const hra: MethodDefinition<HraConfig> = {
  name: "hra",
  description:
    "W H with H a product of r Householder reflections, paired at init so H = I (Yuan et al. 2024; PEFT)",
  schema: hraSchema,
  mergeable: true,
  // PEFT HRA: hra_u [in, r]; even r starts from pairs of equal columns, so H = I.
  contract: {
    testOptions: { targets: "all-linear", rank: 4 },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => s.in * c.rank),
    peftTensors: (m, c) =>
      new Map([...targetShapes(m, c.targets)].map(([n, s]) => [`${n}.hra_u`, [s.in, c.rank]])),
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const u = trainableVariable(
        hraInit(
          ctx.rng.fork(`${name}.hra_u`),
          base.inFeatures,
          config.rank,
          !config.applyGS,
        ),
        [
          base.inFeatures,
          config.rank,
        ],
      );
      vars.set(`${name}.hra_u`, u);
      return new HraLinear(base, u, config.applyGS);
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: config.rank }),
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          tensors.set(`${peftModuleName(name)}.hra_u`, {
            data: l.u.dataSync() as Float32Array,
            shape: [...l.u.shape],
          });
        }
        return {
          config: {
            peft_type: "HRA",
            task_type: "CAUSAL_LM",
            r: config.rank,
            apply_GS: config.applyGS,
            ...peftTargetFields(targets, model.config.nLayers),
            init_weights: true,
            bias: "none",
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
