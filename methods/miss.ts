/**
 * MiSS (formerly Bone: Kang & Yin 2024, "Balancing LoRA Performance and Efficiency with Simple
 * Shard Sharing"), as Hugging Face PEFT's `MissConfig` / `miss.layer.MissLinear` (PEFT 0.20).
 *
 * Formula, by `init` (PEFT `init_weights`):
 * - `miss` (PEFT's default, init_weights=True): one shard M [r, out] shared by every block of r
 *   input columns: y = W x + b + (sum_k x_k) M^T-wise, i.e. PEFT's forward
 *   `sum(x.reshape(..., in/r, r), -2) @ M` (x zero-padded to a multiple of r), so
 *   dW[o, j] = M[j mod r, o] (dW = M^T tiled along the inputs, cut to in columns).
 * - `mini`: M [r, miniR] repeated out / miniR times along the outputs (PEFT `mini_r`, default 1;
 *   out must be divisible by it).
 * - `bat` (Bone's block affine transform): blocks B_i [r, r] for each of the out / r row blocks;
 *   every r x r block W_ij of the weight becomes W_ij B_i + B_i, so dW_ij = W_ij B_i + B_i
 *   depends on W (the dequantized one under quantization); in and out must be divisible by r.
 *
 * Initialisation (PEFT `reset_*_parameters`): M or B = 0, so the adapted model equals the frozen
 * one.
 *
 * Trainable parameters per adapted layer: r out (`miss`), r miniR (`mini`), (out / r) r^2 = r out
 * (`bat`). Options: `rank` r (PEFT `r`, default 64), `targets` (PEFT's Llama default q_proj,
 * v_proj), `init`, `miniR`. Mergeable: W' = W + dW.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import type { LlamaConfig } from "../models/config.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields, permutedInHf } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** MiSS options (PEFT `MissConfig`, with its defaults). */
export const missSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Shard size r (PEFT `r`). */
  rank: z.number().int().positive().default(64),
  /** Which form (PEFT `init_weights`: True, "mini", "bat"). */
  init: z.enum(["miss", "mini", "bat"]).default("miss"),
  /** Output width of the `mini` shard (PEFT `mini_r`). */
  miniR: z.number().int().positive().default(1),
}).strict();

/** MiSS options after defaults. */
export type MissConfig = z.infer<typeof missSchema>;

/** Shape of a layer's shard (PEFT `miss_block`). */
export function missShape(c: Pick<MissConfig, "rank" | "init" | "miniR">, out: number): number[] {
  if (c.init === "mini") return [c.rank, c.miniR];
  if (c.init === "bat") return [out / c.rank, c.rank, c.rank];
  return [c.rank, out];
}

/** A frozen linear layer plus a MiSS shard. */
export class MissLinear extends AdaptedLinear {
  constructor(base: LinearModule, readonly block: tf.Variable, readonly config: MissConfig) {
    super(base);
  }

  /** M [r, out] (mini: repeated along the outputs). */
  #shard(): tf.Tensor2D {
    const m = this.block as tf.Tensor2D;
    return this.config.init === "mini" ? tf.tile(m, [1, this.outFeatures / this.config.miniR]) : m;
  }

  /** bat: dW_ij = W_ij B_i + B_i for every r x r block. */
  #batDelta(): tf.Tensor2D {
    const r = this.config.rank;
    const [out, inF] = [this.outFeatures, this.inFeatures];
    const w = this.base.denseWeight();
    // [out/r, r, in/r, r] -> [out/r, in/r, r, r]: blocks W_ij.
    const blocks = tf.transpose(tf.reshape(w, [out / r, r, inF / r, r]), [0, 2, 1, 3]);
    const b = tf.expandDims(this.block, 1); // [out/r, 1, r, r], broadcast over j
    const d = tf.add(tf.matMul(blocks as tf.Tensor4D, tf.tile(b, [1, inF / r, 1, 1]) as tf.Tensor4D), b);
    return tf.reshape(tf.transpose(d, [0, 2, 1, 3]), [out, inF]) as tf.Tensor2D;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (this.config.init === "bat") {
      return tf.add(this.base.forward(x), tf.matMul(x, this.#batDelta(), false, true));
    }
    const r = this.config.rank;
    const pad = (r - (this.inFeatures % r)) % r;
    const xp = pad > 0 ? tf.pad(x, [[0, 0], [0, pad]]) : x;
    const summed = tf.sum(tf.reshape(xp, [x.shape[0], -1, r]), 1) as tf.Tensor2D;
    return tf.add(this.base.forward(x), tf.matMul(summed, this.#shard()));
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      if (this.config.init === "bat") return this.#batDelta();
      const r = this.config.rank;
      const reps = Math.ceil(this.inFeatures / r);
      const tiled = tf.tile(tf.transpose(this.#shard()), [1, reps]);
      return tf.slice(tiled, [0, 0], [this.outFeatures, this.inFeatures]) as tf.Tensor2D;
    });
  }
}

/** The shard [r, out] with its output columns in the Hugging Face checkpoint's order. */
function outputColumns(name: string, block: tf.Variable, config: LlamaConfig): NamedArray {
  const t = tf.transpose(block);
  const rows = outputRows(name, t, config);
  t.dispose();
  const [r, out] = block.shape;
  const data = new Float32Array(r * out);
  for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) data[k * out + o] = rows.data[o * r + k];
  return { data, shape: [r, out] };
}

/** MiSS. */
export const miss: MethodDefinition<MissConfig> = {
  name: "miss",
  description:
    "one shard M [r, out] shared by every r-block of inputs, dW = tiled M^T (Kang & Yin 2024; PEFT MiSS)",
  schema: missSchema,
  mergeable: true,
  // PEFT MiSS: miss_block [r, out] zeros (mini [r, mini_r], bat [out/r, r, r]): identity at init.
  contract: {
    testOptions: { targets: "all-linear", rank: 4 },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => missShape(c, s.out).reduce((a, b) => a * b, 1)),
    peftTensors: (m, c) =>
      new Map([...targetShapes(m, c.targets)].map(([n, s]) => [`${n}.miss_block`, missShape(c, s.out)])),
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const [out, inF, r] = [base.outFeatures, base.inFeatures, config.rank];
      if (config.init === "bat" && (inF % r !== 0 || out % r !== 0)) {
        throw new Error(
          `miss: --opt init=bat needs ${name} [${out}x${inF}] divisible into ${r}x${r} blocks (--rank)`,
        );
      }
      if (config.init === "mini" && out % config.miniR !== 0) {
        throw new Error(
          `miss: out_features ${out} of ${name} is not divisible by --opt miniR=${config.miniR}`,
        );
      }
      const shape = missShape(config, out);
      const block = trainableVariable(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
      vars.set(`${name}.miss_block`, block);
      return new MissLinear(base, block, config);
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: config.rank }),
      peftExport: () => ({
        // On interleaved-RoPE models the checkpoint permutes q/k outputs; the `miss` shard's
        // output columns permute with them, but `mini`'s repeated pattern and `bat`'s row blocks
        // do not survive the permutation.
        refused: config.init !== "miss" && targets.some((t) => permutedInHf(t, model.config))
          ? `miss --opt init=${config.init} on q/k of an interleaved-RoPE model has no PEFT layout on the converted base; use --targets without q,k`
          : undefined,
        config: {
          peft_type: "MISS",
          task_type: "CAUSAL_LM",
          r: config.rank,
          mini_r: config.miniR,
          miss_dropout: 0,
          init_weights: config.init === "miss" ? true : config.init,
          ...peftTargetFields(targets, model.config.nLayers),
          bias: "none",
          base_model_name_or_path: null,
        },
        tensors: new Map(
          [...wrapped].map(([name, l]) => [
            `${peftModuleName(name)}.miss_block`,
            config.init === "miss" ? outputColumns(name, l.block, model.config) : {
              data: l.block.dataSync() as Float32Array,
              shape: [...l.block.shape],
            },
          ]),
        ),
      }),
    };
  },
};
