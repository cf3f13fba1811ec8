/**
 * LoRA (Hu et al., 2021) and rsLoRA (Kalajdzievski, 2023).
 *
 * A frozen linear layer W [out, in] gains a low-rank update: y = W x + s B A x with A [r, in]
 * (Kaiming-uniform init, as PEFT) and B [out, r] (zeros), so the adapted model equals the frozen
 * one at init. Scale s = alpha / r for LoRA and alpha / sqrt(r) for rsLoRA.
 * Trainable parameters per adapted layer: r (in + out) (with `init=eva`, the layer's redistributed r_l).
 * `--opt init=olora|pissa|pissa_niter_K|milora` starts A, B from the frozen weight instead (PEFT's
 * `init_lora_weights`, lora_init.ts) with the base replaced by W - s B0 A0; `init=corda|lora_ga`
 * likewise from the run's layer inputs or gradient estimate, and `init=eva` sets A from the layer
 * inputs' principal directions with B = 0 and per-layer ranks (lora_data_init.ts). Absent by
 * default, so default runs parse to the same config.
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
import { loraInitStart, type LoraStart, type LoraWeightInit, sketchRng } from "./lora_init.ts";
import {
  cordaCovariance,
  cordaStart,
  type EvaLayerStart,
  evaStarts,
  type LoraDataInit,
  loraGaStart,
} from "./lora_data_init.ts";
import { hfModuleName } from "../models/util/hf_names.ts";
import { Linear } from "../models/linear.ts";
import type { LlamaConfig } from "../models/config.ts";

/** Accepted `init` values: the weight-derived inits and the data-driven ones. */
const LORA_INIT_PATTERN_ALL = /^(olora|pissa|milora|pissa_niter_\d+|eva|corda|lora_ga)$/;

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
   * milora; see lora_init.ts), the base becoming W - s B0 A0, or from the run's data (eva, corda,
   * lora_ga; see lora_data_init.ts). Absent: Kaiming A, zero B.
   */
  init: z.string().regex(
    LORA_INIT_PATTERN_ALL,
    "expected olora, pissa, pissa_niter_K, milora, eva, corda or lora_ga",
  ).optional(),
  /** EVA (PEFT `EvaConfig.rho`, default 2): a layer's rank is at most round(rho r). */
  evaRho: z.number().min(1).optional(),
  /** EVA (`EvaConfig.whiten`, default false): A's rows divided by sqrt of their singular values. */
  evaWhiten: z.boolean().optional(),
  /** EVA (`EvaConfig.adjust_scaling_factors`, default true): alpha_l = alpha r_l / r. */
  evaAdjustScaling: z.boolean().optional(),
  /** CorDA (`CordaConfig.corda_method`, default ipm): largest (ipm) or smallest (kpm) triplets. */
  cordaMethod: z.enum(["ipm", "kpm"]).optional(),
  /** LoRA-GA (`LoraGAConfig.direction`, default ArB2r). */
  loraGaDirection: z.enum(["ArB2r", "A2rBr", "ArBr", "random"]).optional(),
  /** LoRA-GA (`LoraGAConfig.scale`, default stable). */
  loraGaScale: z.enum(["stable", "weight_svd", "gd_scale", "unit"]).optional(),
  /** LoRA-GA (`LoraGAConfig.stable_gamma`, default 16). */
  loraGaStableGamma: z.number().positive().optional(),
  /** LoRA-GA: training batches the gradient estimate averages (default 8; PEFT's is the user's loop). */
  loraGaBatches: z.number().int().positive().optional(),
}).strict();

/** Options that belong to one data-driven init. */
const DATA_INIT_OPTIONS: Record<LoraDataInit, readonly string[]> = {
  eva: ["evaRho", "evaWhiten", "evaAdjustScaling"],
  corda: ["cordaMethod"],
  lora_ga: ["loraGaDirection", "loraGaScale", "loraGaStableGamma", "loraGaBatches"],
};

/** Default batches of LoRA-GA's gradient estimate. */
export const LORA_GA_BATCHES = 8;

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

/** Whether `init` is one of the data-driven inits. */
function isDataInit(init: string | undefined): init is LoraDataInit {
  return init === "eva" || init === "corda" || init === "lora_ga";
}

/** Reject data-init options given without their init (a silent no-op otherwise). */
function checkDataInitOptions(config: LoraRunConfig): void {
  for (const [init, keys] of Object.entries(DATA_INIT_OPTIONS)) {
    for (const key of keys) {
      if (key in config && config.init !== init) {
        throw new Error(`--opt ${key} applies only with --opt init=${init}; drop it or set init=${init}`);
      }
    }
  }
}

/**
 * Starts of the data-driven inits for the targets, from the context's providers: EVA's per-layer
 * rank, A0 and alpha (B0 = 0, base unchanged), or CorDA's / LoRA-GA's A0, B0 and residual base.
 */
function dataStarts(
  model: LlamaModel,
  targets: string[],
  config: LoraRunConfig,
  scale: number,
  ctx: MethodContext,
): { eva?: Map<string, EvaLayerStart>; residual?: Map<string, LoraStart> } {
  const init = config.init as LoraDataInit;
  const denseOf = (name: string) =>
    tf.tidy(() => model.linear(name).denseWeight().dataSync() as Float32Array);
  if (init === "lora_ga") {
    if (!ctx.weightGradients) {
      throw new Error("--opt init=lora_ga needs the run's gradient estimate, which only `bench` computes");
    }
    const grads = ctx.weightGradients(targets, config.loraGaBatches ?? LORA_GA_BATCHES);
    const o = {
      direction: config.loraGaDirection ?? "ArB2r",
      scale: config.loraGaScale ?? "stable",
      stableGamma: config.loraGaStableGamma ?? 16,
    } as const;
    return {
      residual: new Map(targets.map((name) => {
        const l = model.linear(name);
        const g = grads.get(name)!;
        const rng = ctx.rng.fork(`${name}.lora_ga`);
        return [
          name,
          loraGaStart(denseOf(name), g, l.outFeatures, l.inFeatures, config.rank, scale, o, rng, name),
        ];
      })),
    };
  }
  if (!ctx.layerActivations) {
    throw new Error(`--opt init=${init} needs the run's recorded layer inputs, which only \`bench\` records`);
  }
  const acts = ctx.layerActivations(targets);
  if (init === "eva") {
    const layers = new Map(targets.map((name) => {
      const act = acts.get(name)!;
      return [name, { inputs: act.inputs, rows: act.rows, cols: model.linear(name).inFeatures }];
    }));
    return {
      eva: evaStarts(layers, config.rank, config.alpha, {
        rho: config.evaRho ?? 2,
        whiten: config.evaWhiten ?? false,
        adjustScalingFactors: config.evaAdjustScaling ?? true,
      }),
    };
  }
  // CorDA: layers sharing one input array share its covariance.
  const covs = new Map<Float32Array, ReturnType<typeof cordaCovariance>>();
  return {
    residual: new Map(targets.map((name) => {
      const l = model.linear(name);
      const act = acts.get(name)!;
      let cov = covs.get(act.inputs);
      if (!cov) {
        cov = cordaCovariance(act, l.inFeatures, name);
        covs.set(act.inputs, cov);
      }
      const method = config.cordaMethod ?? "ipm";
      return [
        name,
        cordaStart(denseOf(name), l.outFeatures, l.inFeatures, cov, config.rank, scale, method, name),
      ];
    })),
  };
}

function applyLora(model: LlamaModel, config: LoraRunConfig, ctx: MethodContext, rs: boolean): AppliedMethod {
  checkDataInitOptions(config);
  const allTargets = selectTargets(model, config.targets);
  const scaleOf = (alpha: number, rank: number) => rs ? alpha / Math.sqrt(rank) : alpha / rank;
  const scale = scaleOf(config.alpha, config.rank);
  const vars = new Map<string, tf.Variable>();
  const start = initialLoraFactors(allTargets, scale, ctx);
  const init = config.init as LoraWeightInit | LoraDataInit | undefined;
  if (init && start.size > 0) {
    throw new Error(`--loftq and --opt init=${init} both set LoRA's start; use one of them`);
  }
  for (const name of allTargets) checkRank(config.rank, model.linear(name));
  const data = isDataInit(init) ? dataStarts(model, allTargets, config, scale, ctx) : {};
  // EVA adapts only the layers its redistribution gives a rank (PEFT restores the others' base).
  const eva = data.eva;
  const targets = eva ? allTargets.filter((n) => eva.get(n)!.rank > 0) : allTargets;
  const rankOf = (name: string) => eva?.get(name)?.rank ?? config.rank;
  const alphaOf = (name: string) => eva?.get(name)?.alpha ?? config.alpha;
  // Inits that rewrite the base (W - s B0 A0): the starting factors [A0, B0] per layer.
  const rewritesBase = init !== undefined && init !== "eva";
  const initial = new Map<string, [tf.Tensor2D, tf.Tensor2D]>();
  const owned: tf.Tensor[] = [];
  const { wrapped, restore } = wrapLinears(model, targets, (original, name) => {
    let base = original;
    const rank = rankOf(name);
    const layerScale = eva ? scaleOf(alphaOf(name), rank) : scale;
    let from: { a: Float32Array; b: Float32Array } | undefined = start.get(name);
    if (
      from &&
      (from.a.length !== config.rank * base.inFeatures || from.b.length !== base.outFeatures * config.rank)
    ) {
      throw new Error(`--loftq: the factors for ${name} do not have --rank ${config.rank} and its shape`);
    }
    if (eva) from = { a: eva.get(name)!.a, b: new Float32Array(base.outFeatures * rank) };
    if (rewritesBase) {
      // PEFT replaces the base weight by W - s B0 A0 (olora_init, pissa_init, corda_init,
      // lora_ga_init): through makeFrozenLinear, so a quantized run stores the residual like its
      // other frozen weights.
      const [out, inF] = [original.outFeatures, original.inFeatures];
      const f = data.residual?.get(name) ?? loraInitStart(
        init as LoraWeightInit,
        tf.tidy(() => original.denseWeight().dataSync() as Float32Array),
        out,
        inF,
        config.rank,
        scale,
        sketchRng(name),
      );
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
      from?.a ?? kaimingUniform(ctx.rng.fork(`${name}.lora_A`), [rank, base.inFeatures]),
      [rank, base.inFeatures],
    );
    const b = trainableVariable(from?.b ?? new Float32Array(base.outFeatures * rank), [
      base.outFeatures,
      rank,
    ]);
    vars.set(`${name}.lora_A`, a);
    vars.set(`${name}.lora_B`, b);
    return new LoraLinear(base, a, b, layerScale);
  });
  // LoRA-FA's gradient projection divides by the layer's scale: EVA layers must share one.
  const layers = [...wrapped.values()];
  if (config.loraFa && layers.some((l) => l.scale !== layers[0].scale)) {
    throw new Error(
      "--opt loraFa needs one LoRA scale for all layers; with init=eva keep evaAdjustScaling=true",
    );
  }
  // With a base-rewriting init the update relative to the original W is s (B A - B0 A0), exported
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
  // EVA's redistributed ranks and adjusted alphas, as PEFT's `_load_eva_state_dict` records them.
  const evaPatterns = (): Record<string, unknown> => {
    const rankPattern: Record<string, number> = {};
    const alphaPattern: Record<string, number> = {};
    for (const name of targets) {
      if (rankOf(name) !== config.rank) rankPattern[hfModuleName(name)] = rankOf(name);
      if (alphaOf(name) !== config.alpha) alphaPattern[hfModuleName(name)] = alphaOf(name);
    }
    return { rank_pattern: rankPattern, alpha_pattern: alphaPattern };
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
      deltaWeights: rewritesBase
        ? () =>
          new Map([...wrapped].map(([n, l]) => {
            const [a0, b0] = initial.get(n)!;
            return [n, tf.tidy(() => tf.sub(l.delta(), tf.mul(tf.matMul(b0, a0), scale)) as tf.Tensor2D)];
          }))
        : undefined,
    }),
    ...loraOptimizerParts(layers, layers[0]?.scale ?? scale, config),
    peftExport: () => ({
      config: {
        peft_type: "LORA",
        task_type: "CAUSAL_LM",
        r: rewritesBase ? 2 * config.rank : config.rank,
        lora_alpha: rewritesBase ? config.alpha * (rs ? Math.SQRT2 : 2) : config.alpha,
        lora_dropout: 0,
        ...peftTargetFields(targets, model.config.nLayers),
        ...(eva ? evaPatterns() : {}),
        bias: "none",
        use_rslora: rs,
        use_dora: false,
        fan_in_fan_out: false,
        init_lora_weights: true,
        base_model_name_or_path: null,
      },
      tensors: rewritesBase ? convertedTensors() : loraPeftTensors(wrapped, model.config),
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
  // A base-rewriting init exports PEFT's rank-2r conversion (see applyLora); EVA's ranks depend on
  // the run's data (its export carries rank_pattern), not covered by this closed form.
  peftTensors: (m, c) => loraTensorShapes(m, c.targets, c.init && c.init !== "eva" ? 2 * c.rank : c.rank),
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
