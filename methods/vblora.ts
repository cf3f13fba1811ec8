/**
 * VB-LoRA (Li et al. 2024, "VB-LoRA: Extreme Parameter Efficient Fine-Tuning with Vector Banks"),
 * as Hugging Face PEFT's `VBLoRAConfig` / `vblora.layer.Linear` (PEFT 0.20).
 *
 * Formula: one vector bank V [h, b] (h = `numVectors`, b = `vectorLength`) shared by every adapted
 * layer. Each layer's LoRA factors are cut into sub-vectors of length b, each a top-k admixture of
 * bank vectors: for logits z [h] of a sub-vector, with T = topk(z, k),
 *   v = sum_{i in T} softmax(z_T)_i V_i.
 * A [r, in] from logits_A [r, in/b, h] (row i is its in/b sub-vectors side by side) and
 * B [out, r] from logits_B [out/b, r, h] (column j stacks its out/b sub-vectors), as PEFT's
 * `_get_lora_matrices`; y = W x + B A x (no scale), dW = B A.
 *
 * Initialisation, as PEFT: V ~ U(-0.02, 0.02) (`init_vector_bank_bound`), logits ~ N(0, 0.1^2)
 * (`init_logits_std`), so B A is not zero: the function changes at init (PEFT and the paper alike).
 * The top-k selection carries no gradient (torch.topk's indices); the softmax over the selected
 * logits and the bank do.
 *
 * Trainable parameters: h b for the bank plus, per adapted layer, h r (in + out) / b logits.
 * Options: `targets` (PEFT's Llama default q_proj, v_proj), `rank` r (PEFT 4), `numVectors`
 * (256), `vectorLength` (256; in and out of every target must be divisible by it), `topk` (2),
 * `initVectorBankBound` (0.02), `initLogitsStd` (0.1). Mergeable: W' = W + B A.
 *
 * PEFT export: `vblora_logits_A`, `vblora_logits_B` per module and the shared
 * `base_model.vblora_vector_bank` (PEFT's `save_only_topk_weights=False` layout). On q/k of an
 * interleaved-RoPE model the checkpoint permutes B's rows, which no VB-LoRA over the same bank
 * reproduces: that export is refused.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { peftModuleName, stateOf, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields, permutedInHf } from "./peft_export.ts";
import { detached } from "./lora_variants.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** VB-LoRA options (PEFT `VBLoRAConfig`, with its defaults). */
export const vbloraSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Rank r of A, B (PEFT `r`). */
  rank: z.number().int().positive().default(4),
  /** Vectors h in the bank (PEFT `num_vectors`). */
  numVectors: z.number().int().positive().default(256),
  /** Sub-vector length b (PEFT `vector_length`): divides every target's in and out. */
  vectorLength: z.number().int().positive().default(256),
  /** Bank vectors mixed per sub-vector (PEFT `topk`). */
  topk: z.number().int().positive().default(2),
  /** The bank's init U(-bound, bound) (PEFT `init_vector_bank_bound`). */
  initVectorBankBound: z.number().nonnegative().default(0.02),
  /** The logits' init N(0, std^2) (PEFT `init_logits_std`). */
  initLogitsStd: z.number().nonnegative().default(0.1),
}).strict();

/** VB-LoRA options after defaults. */
export type VbloraConfig = z.infer<typeof vbloraSchema>;

/**
 * Sub-vectors from logits [..., h]: the softmax over each row's top-k logits (the others get weight
 * 0) times the bank [h, b], giving [..., b]. The top-k mask is computed without gradient.
 */
export function topkAdmixture(logits: tf.Tensor, bank: tf.Tensor2D, k: number): tf.Tensor {
  const h = bank.shape[0];
  const mask = detached((l) => {
    const { indices } = tf.topk(l, k);
    return tf.sum(tf.oneHot(indices as tf.Tensor, h), -2);
  })(logits);
  // Unselected logits to -1e9: their exp underflows to exactly 0 (softmax over the top-k only).
  const z = tf.add(tf.mul(logits, mask), tf.mul(tf.sub(1, mask), -1e9));
  const w = tf.softmax(z);
  const flat = tf.matMul(tf.reshape(w, [-1, h]), bank);
  return tf.reshape(flat, [...logits.shape.slice(0, -1), bank.shape[1]]);
}

/** A frozen linear layer plus VB-LoRA logits over the shared bank. */
export class VbloraLinear extends AdaptedLinear {
  constructor(
    base: LinearModule,
    /** logits_A [r, in/b, h]. */
    readonly logitsA: tf.Variable,
    /** logits_B [out/b, r, h]. */
    readonly logitsB: tf.Variable,
    readonly bank: tf.Variable,
    readonly topk: number,
  ) {
    super(base);
  }

  /** A [r, in] and B [out, r] (PEFT `_get_lora_matrices`). */
  factors(): [tf.Tensor2D, tf.Tensor2D] {
    const r = this.logitsA.shape[0];
    const a = tf.reshape(topkAdmixture(this.logitsA, this.bank as tf.Tensor2D, this.topk), [r, -1]);
    const subB = topkAdmixture(this.logitsB, this.bank as tf.Tensor2D, this.topk); // [out/b, r, b]
    const b = tf.reshape(tf.transpose(subB, [0, 2, 1]), [-1, r]);
    return [a as tf.Tensor2D, b as tf.Tensor2D];
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const [a, b] = this.factors();
    return tf.add(this.base.forward(x), tf.matMul(tf.matMul(x, a, false, true), b, false, true));
  }

  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const [a, b] = this.factors();
      return tf.matMul(b, a);
    });
  }
}

/** Per-layer PEFT tensor shapes: logits_A [r, in/b, h], logits_B [out/b, r, h]. */
function logitShapes(c: VbloraConfig, inF: number, out: number): [number[], number[]] {
  const b = c.vectorLength;
  return [[c.rank, inF / b, c.numVectors], [out / b, c.rank, c.numVectors]];
}

/** VB-LoRA. */
export const vblora: MethodDefinition<VbloraConfig> = {
  name: "vblora",
  description: "LoRA factors as top-k admixtures of one shared vector bank (Li et al. 2024; PEFT VB-LoRA)",
  schema: vbloraSchema,
  mergeable: true,
  // PEFT: bank [h, b] U(-0.02, 0.02), logits N(0, 0.1): B A != 0, the function changes at init.
  contract: {
    testOptions: { targets: "all-linear", rank: 2, numVectors: 16, vectorLength: 8, topk: 2 },
    identityAtInit: false,
    parameterCount: (m, c) =>
      c.numVectors * c.vectorLength +
      sumOverTargets(m, c.targets, (s) => (c.numVectors * c.rank * (s.in + s.out)) / c.vectorLength),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>([["vblora_vector_bank", [c.numVectors, c.vectorLength]]]);
      for (const [n, s] of targetShapes(m, c.targets)) {
        const [a, b] = logitShapes(c, s.in, s.out);
        out.set(`${n}.vblora_logits_A`, a);
        out.set(`${n}.vblora_logits_B`, b);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    if (config.topk > config.numVectors) {
      throw new Error(`vblora: --opt topk=${config.topk} exceeds --opt numVectors=${config.numVectors}`);
    }
    const targets = selectTargets(model, config.targets);
    const [h, len] = [config.numVectors, config.vectorLength];
    const bound = config.initVectorBankBound;
    const bank = trainableVariable(ctx.rng.fork("vblora_vector_bank").uniformArray(h * len, -bound, bound), [
      h,
      len,
    ]);
    const vars = new Map<string, tf.Variable>([["vblora_vector_bank", bank]]);
    const std = config.initLogitsStd;
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const [out, inF] = [base.outFeatures, base.inFeatures];
      if (inF % len !== 0 || out % len !== 0) {
        throw new Error(
          `vblora: ${name} [${out}x${inF}] is not divisible by --opt vectorLength=${len} (in and out must be)`,
        );
      }
      const [sa, sb] = logitShapes(config, inF, out);
      const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
      const la = trainableVariable(ctx.rng.fork(`${name}.vblora_logits_A`).normalArray(size(sa), std), sa);
      const lb = trainableVariable(ctx.rng.fork(`${name}.vblora_logits_B`).normalArray(size(sb), std), sb);
      vars.set(`${name}.vblora_logits_A`, la);
      vars.set(`${name}.vblora_logits_B`, lb);
      return new VbloraLinear(base, la, lb, bank, config.topk);
    });
    return {
      ...adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: config.rank }),
      peftExport: () => {
        const tensors = new Map([...stateOf(vars)].map(([k, v]) => [
          k === "vblora_vector_bank" ? "base_model.vblora_vector_bank" : peftKey(k),
          v,
        ]));
        const permuted = targets.filter((t) => permutedInHf(t, model.config));
        return {
          refused: permuted.length > 0
            ? `vblora: the checkpoint permutes the output rows of ${
              permuted[0]
            } (interleaved RoPE), which no VB-LoRA over the same bank reproduces; use --targets without q,k`
            : undefined,
          config: {
            peft_type: "VBLORA",
            task_type: "CAUSAL_LM",
            r: config.rank,
            num_vectors: h,
            vector_length: len,
            topk: config.topk,
            save_only_topk_weights: false,
            vblora_dropout: 0,
            init_vector_bank_bound: bound,
            init_logits_std: std,
            fan_in_fan_out: false,
            ...peftTargetFields(targets, model.config.nLayers),
            bias: "none",
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};

/** `layers.0.attn.q.vblora_logits_A` -> PEFT's `base_model.model.model.layers.0.self_attn.q_proj.vblora_logits_A`. */
function peftKey(stateName: string): string {
  const dot = stateName.lastIndexOf(".");
  return `${peftModuleName(stateName.slice(0, dot))}.${stateName.slice(dot + 1)}`;
}
