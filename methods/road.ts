/**
 * RoAd: 2D rotary adaptation (Liao et al. 2024, "3-in-1: 2D Rotary Adaptation for Efficient
 * Finetuning, Efficient Batching and Composability"), as Hugging Face PEFT's `RoadConfig` /
 * `road.layer.Linear` (PEFT 0.20).
 *
 * Formula: the output h = W x + b of a frozen linear layer is rotated and scaled in pairs,
 * y = R h. The outputs are split into groups of g = `groupSize`; inside a group element k (first
 * half) pairs with element k + g/2, and
 *   y_k       = c1_k h_k       - c2_k h_{k+g/2},
 *   y_{k+g/2} = c1_{k+g/2} h_{k+g/2} + c2_{k+g/2} h_k
 * (PEFT `_apply_road`: h c1 + rotate_half(h) c2). With angles theta and scales alpha:
 * `road_1` one (alpha, theta) per pair, c1 = alpha cos theta, c2 = alpha sin theta (a scaled 2D
 * rotation; out/2 angles and scales); `road_2` one per element (out each); `road_4` separate
 * angles and scales for c1 and c2 (2 out each): c1 = alpha_1 cos theta_1, c2 = alpha_2 sin theta_2.
 * Merge (PEFT `merge`): W' = R W and b' = R b.
 *
 * Initialisation (PEFT `reset_parameters`): theta = 0 and alpha = 1, so R = I and the adapted model
 * equals the frozen one.
 *
 * Trainable parameters per adapted layer: out (road_1), 2 out (road_2), 4 out (road_4). Every
 * target's out_features must be divisible by `groupSize` (default 64, PEFT's; an error otherwise,
 * as in PEFT).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { namedArray, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields, permutedInHf } from "./peft_export.ts";
import { hfModuleName } from "../models/util/hf_names.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** RoAd options (PEFT `RoadConfig`, with its defaults). */
export const roadSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** How many angles and scales (PEFT `variant`). */
  variant: z.enum(["road_1", "road_2", "road_4"]).default("road_1"),
  /** Group size g: element k pairs with k + g/2 inside each group (PEFT `group_size`). */
  groupSize: z.number().int().positive().multipleOf(2).default(64),
}).strict();

/** RoAd options after defaults. */
export type RoadConfig = z.infer<typeof roadSchema>;

/** Length of theta (and of alpha) for a layer with `out` outputs (PEFT `update_layer`). */
export function roadSize(variant: RoadConfig["variant"], out: number): number {
  return variant === "road_1" ? out / 2 : variant === "road_2" ? out : 2 * out;
}

/**
 * c1 and c2 [out] from theta and alpha (PEFT `_prepare_cols`): road_1 repeats each group's g/2
 * values for both halves; road_4 takes each group's first g values for c1 and the next g for c2.
 */
export function roadCols(
  variant: RoadConfig["variant"],
  g: number,
  theta: tf.Tensor1D,
  alpha: tf.Tensor1D,
): { c1: tf.Tensor1D; c2: tf.Tensor1D } {
  return tf.tidy(() => {
    if (variant === "road_1") {
      const rep = (v: tf.Tensor1D) => tf.reshape(tf.tile(tf.reshape(v, [-1, 1, g / 2]), [1, 2, 1]), [-1]);
      const [t, a] = [rep(theta), rep(alpha)];
      return { c1: tf.mul(a, tf.cos(t)) as tf.Tensor1D, c2: tf.mul(a, tf.sin(t)) as tf.Tensor1D };
    }
    if (variant === "road_2") {
      return {
        c1: tf.mul(alpha, tf.cos(theta)) as tf.Tensor1D,
        c2: tf.mul(alpha, tf.sin(theta)) as tf.Tensor1D,
      };
    }
    const half = (v: tf.Tensor1D, i: number) =>
      tf.reshape(tf.slice(tf.reshape(v, [-1, 2, g]), [0, i, 0], [-1, 1, -1]), [-1]) as tf.Tensor1D;
    return {
      c1: tf.mul(half(alpha, 0), tf.cos(half(theta, 0))) as tf.Tensor1D,
      c2: tf.mul(half(alpha, 1), tf.sin(half(theta, 1))) as tf.Tensor1D,
    };
  });
}

/** A frozen linear layer whose output is rotated and scaled in pairs. */
export class RoadLinear extends AdaptedLinear {
  /** The partner of each output (k <-> k + g/2 in its group) and the sign of its term. */
  readonly #partner: tf.Tensor1D;
  readonly #sign: tf.Tensor1D;

  constructor(
    base: LinearModule,
    readonly theta: tf.Variable,
    readonly alpha: tf.Variable,
    readonly variant: RoadConfig["variant"],
    readonly groupSize: number,
  ) {
    super(base);
    const out = base.outFeatures;
    const h = groupSize / 2;
    const partner = new Int32Array(out);
    const sign = new Float32Array(out);
    for (let k = 0; k < out; k++) {
      const first = k % groupSize < h;
      partner[k] = first ? k + h : k - h;
      sign[k] = first ? -1 : 1;
    }
    this.#partner = tf.tensor1d(partner, "int32");
    this.#sign = tf.tensor1d(sign);
  }

  /** R applied along `axis` of t: c1 ⊙ t + sign ⊙ c2 ⊙ t[partner]. */
  #rotate(t: tf.Tensor, axis: number): tf.Tensor {
    const { c1, c2 } = roadCols(
      this.variant,
      this.groupSize,
      this.theta as tf.Tensor1D,
      this.alpha as tf.Tensor1D,
    );
    const shape = axis === 0 && t.rank === 2 ? [-1, 1] : [-1];
    const a = tf.reshape(c1, shape);
    const b = tf.reshape(tf.mul(this.#sign, c2), shape);
    return tf.add(tf.mul(t, a), tf.mul(tf.gather(t, this.#partner, axis), b));
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const h = this.base.forward(x);
    const { c1, c2 } = roadCols(
      this.variant,
      this.groupSize,
      this.theta as tf.Tensor1D,
      this.alpha as tf.Tensor1D,
    );
    return tf.add(tf.mul(h, c1), tf.mul(tf.gather(h, this.#partner, 1), tf.mul(this.#sign, c2)));
  }

  /** dW = R W - W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.base.denseWeight();
      return tf.sub(this.#rotate(w, 0), w) as tf.Tensor2D;
    });
  }

  /** R b (PEFT merges the bias too), or null without a bias. */
  override mergedBias(): tf.Tensor1D | null {
    const b = this.base.bias;
    return b ? tf.tidy(() => this.#rotate(b, 0) as tf.Tensor1D) : null;
  }

  /** R [out, out] (caller disposes). */
  rotation(): tf.Tensor2D {
    return tf.tidy(() => this.#rotate(tf.eye(this.outFeatures), 0) as tf.Tensor2D);
  }

  /** Free the pairing tensors. */
  override disposeOwned(): void {
    tf.dispose([this.#partner, this.#sign]);
  }
}

/**
 * `target_modules` for PEFT's RoadConfig, which has no `layers_to_transform`/`layers_pattern`
 * (road/config.py; `PeftConfig.from_peft_type` drops unknown keys, so PEFT would wrap the kinds in
 * every layer): targets in only some layers are listed by full module name instead.
 */
function roadTargetFields(targets: string[], nLayers: number): Record<string, unknown> {
  const fields = peftTargetFields(targets, nLayers);
  return fields.layers_to_transform === undefined
    ? fields
    : { target_modules: targets.map(hfModuleName).sort() };
}

/** RoAd. */
export const road: MethodDefinition<RoadConfig> = {
  name: "road",
  description:
    "2D rotations with scales of output pairs (k, k+g/2), one angle per pair (Liao et al. 2024; PEFT RoAd)",
  schema: roadSchema,
  mergeable: true,
  // PEFT RoAd: road_theta, road_alpha [out/2 | out | 2 out] (zeros, ones at init: identity).
  contract: {
    testOptions: { targets: "all-linear", groupSize: 8 },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => 2 * roadSize(c.variant, s.out)),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [name, s] of targetShapes(m, c.targets)) {
        out.set(`${name}.road_theta`, [roadSize(c.variant, s.out)]);
        out.set(`${name}.road_alpha`, [roadSize(c.variant, s.out)]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      if (base.outFeatures % config.groupSize !== 0) {
        throw new Error(
          `road: out_features ${base.outFeatures} of ${name} is not divisible by --opt groupSize=${config.groupSize}`,
        );
      }
      const n = roadSize(config.variant, base.outFeatures);
      const theta = trainableVariable(new Float32Array(n), [n]);
      const alpha = trainableVariable(new Float32Array(n).fill(1), [n]);
      vars.set(`${name}.road_theta`, theta);
      vars.set(`${name}.road_alpha`, alpha);
      return new RoadLinear(base, theta, alpha, config.variant, config.groupSize);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore });
    return {
      ...applied,
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          tensors.set(`${peftModuleName(name)}.road_theta`, namedArray(l.theta));
          tensors.set(`${peftModuleName(name)}.road_alpha`, namedArray(l.alpha));
        }
        return {
          // RoAd pairs outputs (k, k+g/2); the checkpoint's q/k row permutation of interleaved-RoPE
          // models breaks those pairs, so no RoAd adapter on the converted base equals the run.
          refused: targets.some((t) => permutedInHf(t, model.config))
            ? "road on q/k of an interleaved-RoPE (llama2.c) model has no PEFT layout on the converted base; use --targets without q,k"
            : undefined,
          config: {
            peft_type: "ROAD",
            task_type: "CAUSAL_LM",
            variant: config.variant,
            group_size: config.groupSize,
            init_weights: true,
            ...roadTargetFields(targets, model.config.nLayers),
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
