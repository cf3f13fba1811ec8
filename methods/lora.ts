/**
 * LoRA (Hu et al., 2021) and rsLoRA (Kalajdzievski, 2023).
 *
 * A frozen linear layer W [out, in] gains a low-rank update: y = W x + s B A x with A [r, in]
 * (Kaiming-uniform init, as PEFT) and B [out, r] (zeros), so the adapted model equals the frozen
 * one at init. Scale s = alpha / r for LoRA and alpha / sqrt(r) for rsLoRA.
 * Trainable parameters per adapted layer: r (in + out).
 * `--opt init=olora|pissa|pissa_niter_K|milora` starts A, B from the frozen weight instead (PEFT's
 * `init_lora_weights`, lora_init.ts) with the base replaced by W - s B0 A0; absent by default, so
 * default runs parse to the same config.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { AppliedMethod, LoftqPlan, MethodContext, MethodDefinition, NamedArray } from "./types.ts";
import { loraTensorShapes, selectTargets, sumOverTargets } from "./targets.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";
import { loraOptimizerParts } from "./lora_optim.ts";
import { kaimingUniform, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import { LORA_INIT_PATTERN, loraInitStart, type LoraWeightInit, sketchRng } from "./lora_init.ts";
import { Linear } from "../models/linear.ts";
import type { LlamaConfig } from "../models/config.ts";

/** Options shared by the LoRA family. */
export const loraSchema = z.object({
  /** Target preset or pattern (see targets.ts). */
  targets: z.string().default("q+v"),
  /** Rank r of the update. */
  rank: z.number().int().positive().default(8),
  /** Scaling numerator alpha. */
  alpha: z.number().positive().default(16),
}).strict();

/** LoRA options after defaults. */
export type LoraConfig = z.infer<typeof loraSchema>;

/**
 * Options of `lora` and `rslora` themselves: LoRA's plus the optimizer options of
 * `lora_optim.ts` (absent by default, so default runs parse to the same config).
 */
export const loraRunSchema = loraSchema.extend({
  /** LoRA+: lora_B's learning rate is lr times this (PEFT's docs and the paper use 16). */
  loraPlusLrRatio: z.number().positive().optional(),
  /** LoRA-FA: lora_A frozen, B's gradient projected (PEFT `create_lorafa_optimizer`). */
  loraFa: z.boolean().optional(),
  /**
   * A start taken from the frozen weight (PEFT `init_lora_weights`: olora, pissa, pissa_niter_K,
   * milora; see lora_init.ts), the base becoming W - s B0 A0. Absent: Kaiming A, zero B.
   */
  init: z.string().regex(LORA_INIT_PATTERN, "expected olora, pissa, pissa_niter_K or milora").optional(),
}).strict();

/** `lora` / `rslora` options after defaults. */
export type LoraRunConfig = z.infer<typeof loraRunSchema>;

/** A linear layer with a low-rank update s B A on a frozen base. */
export class LoraLinear extends AdaptedLinear {
  /** A [r, in]. */
  readonly a: tf.Variable;
  /** B [out, r]. */
  readonly b: tf.Variable;
  readonly scale: number;

  constructor(base: LinearModule, a: tf.Variable, b: tf.Variable, scale: number) {
    super(base);
    this.a = a;
    this.b = b;
    this.scale = scale;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const low = tf.matMul(tf.matMul(x, this.a, false, true), this.b, false, true);
    return tf.add(this.base.forward(x), tf.mul(low, this.scale));
  }

  /** The update s B A [out, in]. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.matMul(this.b, this.a), this.scale));
  }
}

/** Check a rank against a layer's shape (the update's rank cannot exceed min(in, out)). */
export function checkRank(rank: number, layer: LinearModule): void {
  const max = Math.min(layer.inFeatures, layer.outFeatures);
  if (rank > max) {
    throw new Error(
      `--rank ${rank} is impossible for ${layer.name} [${layer.outFeatures}x${layer.inFeatures}]: at most ${max}`,
    );
  }
}

/**
 * The PEFT tensors of LoRA layers: lora_A [r, in] and lora_B [out, r] under PEFT's module names,
 * B's rows in the Hugging Face checkpoint's order of the model with config `model` (q/k of
 * interleaved-RoPE models permuted, see peft_export.ts).
 */
export function loraPeftTensors(
  layers: Map<string, LoraLinear>,
  model: LlamaConfig,
): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [name, l] of layers) {
    const m = peftModuleName(name);
    out.set(`${m}.lora_A.weight`, { data: l.a.dataSync() as Float32Array, shape: [...l.a.shape] });
    out.set(`${m}.lora_B.weight`, outputRows(name, l.b, model));
  }
  return out;
}

/**
 * Why a LoftQ-initialised adapter is not exported: its A, B were fitted against the quantized base
 * (W ~ Q + B A), which the export does not carry.
 */
export const LOFTQ_EXPORT_REFUSAL =
  "--loftq: A and B were fitted to the LoftQ-quantized base Q (W ~ Q + B A), which is not exported; " +
  "on the original weights PEFT would compute W + B A, not the run's Q + B A (PEFT's LoftQ flow also " +
  "saves the base with Q in place of W); train with --loftq 0 to export";

/**
 * LoRA's starting A and B from `ctx.initialFactors` (LoftQ: W ~ Q + B A): s B' A' = B A with
 * A' = A and B' = B / s, in float32 as the update's own arithmetic. Factors for a layer LoRA does
 * not adapt are an error rather than silently ignored.
 */
function initialLoraFactors(
  targets: string[],
  scale: number,
  ctx: MethodContext,
): Map<string, { a: Float32Array; b: Float32Array }> {
  const out = new Map<string, { a: Float32Array; b: Float32Array }>();
  const s = Math.fround(scale); // the scale as a float32 tensor holds it
  for (const [name, f] of ctx.initialFactors ?? []) {
    if (!targets.includes(name)) {
      throw new Error(`--loftq: factors for ${name}, which --targets does not adapt`);
    }
    // A float32 quotient computed in float64 and rounded once equals float32 division exactly.
    out.set(name, { a: f.a, b: Float32Array.from(f.b, (x) => x / s) });
  }
  return out;
}

/** LoftQ's plan for the LoRA family: the layers `targets` selects, at the adapter's rank. */
function loraLoftqPlan(model: LlamaModel, config: LoraConfig): LoftqPlan {
  return { targets: selectTargets(model, config.targets), rank: config.rank };
}

function applyLora(model: LlamaModel, config: LoraRunConfig, ctx: MethodContext, rs: boolean): AppliedMethod {
  const targets = selectTargets(model, config.targets);
  const scale = rs ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
  const vars = new Map<string, tf.Variable>();
  const start = initialLoraFactors(targets, scale, ctx);
  const init = config.init as LoraWeightInit | undefined;
  if (init && start.size > 0) {
    throw new Error(`--loftq and --opt init=${init} both set LoRA's start; use one of them`);
  }
  // Weight-derived inits: the starting factors [A0, B0] per layer and what the method owns.
  const initial = new Map<string, [tf.Tensor2D, tf.Tensor2D]>();
  const owned: tf.Tensor[] = [];
  const { wrapped, restore } = wrapLinears(model, targets, (original, name) => {
    checkRank(config.rank, original);
    let base = original;
    let from = start.get(name);
    if (
      from &&
      (from.a.length !== config.rank * base.inFeatures || from.b.length !== base.outFeatures * config.rank)
    ) {
      throw new Error(`--loftq: the factors for ${name} do not have --rank ${config.rank} and its shape`);
    }
    if (init) {
      // PEFT replaces the base weight by W - s B0 A0 (olora_init, pissa_init): through
      // makeFrozenLinear, so a quantized run stores the residual like its other frozen weights.
      const [out, inF] = [original.outFeatures, original.inFeatures];
      const w = tf.tidy(() => original.denseWeight().dataSync() as Float32Array);
      const f = loraInitStart(init, w, out, inF, config.rank, scale, sketchRng(name));
      const res = tf.tensor2d(f.residual, [out, inF]);
      base = ctx.makeFrozenLinear(name, res, original.bias);
      res.dispose();
      if (base instanceof Linear) owned.push(base.weight);
      const pair: [tf.Tensor2D, tf.Tensor2D] = [
        tf.tensor2d(f.a, [config.rank, inF]),
        tf.tensor2d(f.b, [out, config.rank]),
      ];
      initial.set(name, pair);
      owned.push(...pair);
      from = f;
    }
    const a = trainableVariable(
      from?.a ?? kaimingUniform(ctx.rng.fork(`${name}.lora_A`), [config.rank, base.inFeatures]),
      [
        config.rank,
        base.inFeatures,
      ],
    );
    const b = trainableVariable(from?.b ?? new Float32Array(base.outFeatures * config.rank), [
      base.outFeatures,
      config.rank,
    ]);
    vars.set(`${name}.lora_A`, a);
    vars.set(`${name}.lora_B`, b);
    return new LoraLinear(base, a, b, scale);
  });
  // With a weight-derived init the update relative to the original W is s (B A - B0 A0), exported
  // as PEFT's conversion (`subtract_mutated_init`): rank 2r, A' = [A; A0], B' = [B, -B0], alpha
  // doubled (times sqrt 2 with rsLoRA) so the scale stays, on the original base.
  const convertedTensors = (): Map<string, NamedArray> => {
    const out = new Map<string, NamedArray>();
    for (const [name, l] of wrapped) {
      const [a0, b0] = initial.get(name)!;
      const m = peftModuleName(name);
      const [a, b] = tf.tidy(() => [tf.concat([l.a, a0], 0), tf.concat([l.b, tf.neg(b0)], 1)]);
      out.set(`${m}.lora_A.weight`, { data: a.dataSync() as Float32Array, shape: [...a.shape] });
      out.set(`${m}.lora_B.weight`, outputRows(name, b, model.config));
      tf.dispose([a, b]);
    }
    return out;
  };
  return {
    ...adaptedMethod({
      model,
      ctx,
      vars,
      wrapped,
      restore,
      owned,
      nominalRank: config.rank,
      deltaWeights: init
        ? () =>
          new Map([...wrapped].map(([n, l]) => {
            const [a0, b0] = initial.get(n)!;
            return [n, tf.tidy(() => tf.sub(l.delta(), tf.mul(tf.matMul(b0, a0), scale)) as tf.Tensor2D)];
          }))
        : undefined,
    }),
    ...loraOptimizerParts([...wrapped.values()], scale, config),
    peftExport: () => ({
      config: {
        peft_type: "LORA",
        task_type: "CAUSAL_LM",
        r: init ? 2 * config.rank : config.rank,
        lora_alpha: init ? config.alpha * (rs ? Math.SQRT2 : 2) : config.alpha,
        lora_dropout: 0,
        ...peftTargetFields(targets, model.config.nLayers),
        bias: "none",
        use_rslora: rs,
        use_dora: false,
        fan_in_fan_out: false,
        init_lora_weights: true,
        base_model_name_or_path: null,
      },
      tensors: init ? convertedTensors() : loraPeftTensors(wrapped, model.config),
      refused: start.size > 0 ? LOFTQ_EXPORT_REFUSAL : undefined,
    }),
  };
}

/**
 * LoRA's contract facts (PEFT `LoraLayer.update_layer`: lora_A [r, in], lora_B [out, r] = 0, so
 * identity at init): r (in + out) trainable values per target.
 */
const loraContract: MethodDefinition<LoraRunConfig>["contract"] = {
  testOptions: { rank: 4, alpha: 8, targets: "all-linear" },
  identityAtInit: true,
  // LoRA-FA trains only lora_B [out, r] (PEFT sets lora_A's requires_grad False).
  parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => c.rank * ((c.loraFa ? 0 : s.in) + s.out)),
  // A weight-derived init exports PEFT's rank-2r conversion (see applyLora).
  peftTensors: (m, c) => loraTensorShapes(m, c.targets, c.init ? 2 * c.rank : c.rank),
};

/** LoRA: scale alpha / r. */
export const lora: MethodDefinition<LoraRunConfig> = {
  name: "lora",
  description: "low-rank update s*B*A on frozen linears, s = alpha/r (Hu et al. 2021)",
  schema: loraRunSchema,
  mergeable: true,
  loftqPlan: loraLoftqPlan,
  contract: loraContract,
  apply: (model, config, ctx) => applyLora(model, config, ctx, false),
};

/** rsLoRA: rank-stabilised scale alpha / sqrt(r). */
export const rslora: MethodDefinition<LoraRunConfig> = {
  name: "rslora",
  description: "LoRA with rank-stabilised scale alpha/sqrt(r) (Kalajdzievski 2023)",
  schema: loraRunSchema,
  mergeable: true,
  loftqPlan: loraLoftqPlan,
  contract: loraContract,
  apply: (model, config, ctx) => applyLora(model, config, ctx, true),
};
