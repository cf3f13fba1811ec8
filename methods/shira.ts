/**
 * SHiRA, sparse high-rank adapters (Bhardwaj et al. 2024, "Sparse High Rank Adapters"), as Hugging
 * Face PEFT's `shira` (`ShiraConfig`, `shira.layer.Linear`, `mask_functions.random_mask`, PEFT
 * 0.20.1.dev0).
 *
 * Formula: a fixed binary mask M over W [out, in] with exactly K = r (out + in) ones (the same
 * budget as a rank-r LoRA); the trainable values w [K] sit at M's positions in row-major order
 * (PEFT's `torch.where(mask == 1)` order): dW = scatter(w, M), y = (W + dW) x. The update is sparse
 * but not low-rank (r sets only the budget).
 *
 * Mask, as PEFT's default `mask_type="random"`: K positions drawn uniformly without replacement
 * from the out in entries (PEFT: the first K of `torch.randperm`; here a partial Fisher-Yates from
 * the seeded `rng.fork(`${layer}.shira_mask`)`, since torch's generator is not reproduced). PEFT
 * refuses a layer where K > out in; so does this.
 *
 * Initialisation, as PEFT (`init_weights=True`): w = 0, so the function is unchanged at init.
 * Trainable parameters: sum over targets of r (in + out). Options (PEFT defaults): `targets`
 * (PEFT's Llama default q_proj, v_proj), `rank` r (32). PEFT's inference-time `scaling` (1.0 while
 * training) is not an option. Mergeable: W' = W + dW. The saved state carries the mask too
 * (`${layer}.shira_indices` [2, K], rows then columns), so it loads into a run of another seed.
 *
 * PEFT export: per module `shira_weight` [K] and `shira_indices` [2, K] (PEFT's
 * `ShiraModel._get_adapter_state_dict` saves the indices, and `_remap_adapter_state_dict_for_load`
 * loads them back with `.to(torch.int)`, so PEFT uses the exported mask, not its own draw; written
 * as float32, PEFT's own Windows layout, exact below 2^24). On q/k of an interleaved-RoPE model the
 * checkpoint permutes W's rows; the mask's rows are permuted the same way. ShiraConfig has no
 * `layers_to_transform`: targets in only some layers are listed by full module name.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { Rng } from "../models/util/rng.ts";
import type { LlamaConfig } from "../models/config.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields } from "./peft_export.ts";
import { hfRowOrder } from "../models/hf.ts";
import { hfModuleName } from "../models/util/hf_names.ts";
import type { NamedArray } from "./types.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** SHiRA options (PEFT `ShiraConfig`, with its defaults). */
export const shiraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** LoRA-equivalent rank r: each layer trains r (in + out) entries (PEFT `r`). */
  rank: z.number().int().positive().default(32),
}).strict();

/** SHiRA options after defaults. */
export type ShiraConfig = z.infer<typeof shiraSchema>;

/**
 * K distinct flat positions of an [out, in] weight drawn uniformly without replacement (the first K
 * of a random permutation, by a partial Fisher-Yates over a sparse swap table), sorted ascending:
 * row-major order, as PEFT's `torch.where(mask == 1)` lists them.
 */
export function randomMaskIndices(rng: Rng, size: number, k: number): Int32Array {
  const swapped = new Map<number, number>();
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(size - i);
    const vi = swapped.get(i) ?? i;
    const vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    out[i] = vj;
  }
  return out.sort();
}

/** A frozen linear layer plus trainable values at fixed sparse positions of its weight. */
export class ShiraLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** Trainable values w [K]. */
    readonly weight: tf.Variable,
    /** Their flat positions (row * in + col) in W, ascending (replaced by `loadState`). */
    public indices: tf.Tensor1D,
  ) {
    super(base);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(this.base.forward(x), tf.matMul(x, this.delta(), false, true));
  }

  /** dW: w scattered into a zero [out, in] matrix (PEFT `get_delta_weight`'s sparse COO, densified). */
  delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.reshape(
        tf.unsortedSegmentSum(this.weight, this.indices, this.outFeatures * this.inFeatures),
        [this.outFeatures, this.inFeatures],
      )
    );
  }

  /** Free the mask's index tensor. */
  override disposeOwned(): void {
    this.indices.dispose();
  }
}

/** SHiRA. */
export const shira: MethodDefinition<ShiraConfig> = {
  name: "shira",
  description:
    "Sparse high-rank adapter: r(in+out) entries of W at a fixed random mask train, zero-init (Bhardwaj et al. 2024; PEFT SHiRA)",
  schema: shiraSchema,
  mergeable: true,
  contract: {
    testOptions: { targets: "all-linear", rank: 2 },
    identityAtInit: true,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * (s.in + s.out)),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [n, s] of targetShapes(m, c.targets)) {
        const k = c.rank * (s.in + s.out);
        out.set(`${n}.shira_weight`, [k]);
        out.set(`${n}.shira_indices`, [2, k]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const [out, inF] = [base.outFeatures, base.inFeatures];
      const k = config.rank * (out + inF);
      if (k > out * inF) {
        throw new Error(
          `shira: --rank ${config.rank} asks for ${k} entries of ${name} [${out}x${inF}], more than it has; lower --rank`,
        );
      }
      const idx = tf.tensor1d(randomMaskIndices(ctx.rng.fork(`${name}.shira_mask`), out * inF, k), "int32");
      const w = trainableVariable(new Float32Array(k), [k]);
      vars.set(`${name}.shira_weight`, w);
      return new ShiraLinear(base, w, idx);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: config.rank });
    // The mask is saved with the values ([2, K] rows then columns, PEFT's `shira_indices` layout;
    // float32 holds indices below 2^24 exactly), so a state loads into a run drawn with another seed.
    return {
      ...applied,
      state: () => {
        const out = applied.state();
        for (const [name, layer] of wrapped) {
          const flat = layer.indices.dataSync();
          const data = new Float32Array(2 * flat.length);
          flat.forEach((f, i) => {
            data[i] = Math.floor(f / layer.inFeatures);
            data[flat.length + i] = f % layer.inFeatures;
          });
          out.set(`${name}.shira_indices`, { data, shape: [2, flat.length] });
        }
        return out;
      },
      loadState: (tensors) => {
        applied.loadState(tensors);
        for (const [name, layer] of wrapped) {
          const t = tensors.get(`${name}.shira_indices`);
          const k = layer.weight.size;
          if (!t || t.data.length !== 2 * k) {
            throw new Error(
              `adapter file lacks tensor '${name}.shira_indices' [2, ${k}]; was it saved by shira?`,
            );
          }
          const flat = new Int32Array(k);
          for (let i = 0; i < k; i++) flat[i] = t.data[i] * layer.inFeatures + t.data[k + i];
          layer.indices.dispose();
          layer.indices = tf.tensor1d(flat, "int32");
        }
      },
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, layer] of wrapped) {
          const [w, idx] = peftLayout(name, layer, model.config);
          tensors.set(`${peftModuleName(name)}.shira_weight`, w);
          tensors.set(`${peftModuleName(name)}.shira_indices`, idx);
        }
        const fields = peftTargetFields(targets, model.config.nLayers);
        return {
          config: {
            peft_type: "SHIRA",
            task_type: "CAUSAL_LM",
            r: config.rank,
            mask_type: "random",
            random_seed: null,
            fan_in_fan_out: false,
            init_weights: true,
            target_modules: fields.layers_to_transform === undefined
              ? fields.target_modules
              : targets.map(hfModuleName).sort(),
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};

/**
 * One layer's `shira_weight` and `shira_indices` [2, K] in the Hugging Face checkpoint's row order:
 * each masked entry's slot (k + 1) is written into a dense [out, in] map, its rows reordered as the
 * checkpoint's (`hfRowOrder`: q/k of interleaved-RoPE models), and read back row-major.
 */
function peftLayout(name: string, layer: ShiraLinear, cfg: LlamaConfig): [NamedArray, NamedArray] {
  const [out, inF] = [layer.outFeatures, layer.inFeatures];
  const flat = layer.indices.dataSync();
  const w = layer.weight.dataSync();
  const slots = new Float32Array(out * inF);
  flat.forEach((f, k) => (slots[f] = k + 1));
  const hf = hfRowOrder(name, slots, cfg);
  const k = flat.length;
  const values = new Float32Array(k);
  const idx = new Float32Array(2 * k);
  let t = 0;
  hf.forEach((slot, f) => {
    if (slot === 0) return;
    values[t] = w[slot - 1];
    idx[t] = Math.floor(f / inF);
    idx[k + t] = f % inF;
    t++;
  });
  return [{ data: values, shape: [k] }, { data: idx, shape: [2, k] }];
}
