/**
 * The contract every PEFT method implements. A method is one module exporting a
 * {@link MethodDefinition}: a zod schema of its options (with documented defaults) and an
 * `apply(model, config, ctx)` that wraps the targeted modules of a {@link LlamaModel} and returns
 * an {@link AppliedMethod}: the trainable variables plus optional hooks.
 *
 * How methods plug into the model (see `models/linear.ts` and `models/llama.ts`):
 * - linear layers: replace `model.linears.get(name)` with a `LinearModule` that keeps the original
 *   as its base (LoRA family, IA3, BitFit, ...);
 * - norm gains and other parameters: `model.params` (LN tuning, full fine-tuning);
 * - `model.hooks`: soft prompts, key/value prefixes, sublayer outputs (adapters).
 * The base weights stay frozen (non-trainable variables); only `trainable` receives gradients.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { z } from "zod";
import type { LlamaModel } from "../models/llama.ts";
import type { LinearModule } from "../models/linear.ts";
import type { Rng } from "../models/util/rng.ts";
import type { LlamaConfig } from "../models/config.ts";

/** What a method may need besides the model and its options. */
export interface MethodContext {
  /** Seeded generator for initialisation (fork it per layer: `rng.fork(name)`). */
  rng: Rng;
  /**
   * Build a frozen linear layer from a dense weight [out, in] under the run's quantization scheme
   * (plain fp32 when unquantized). Methods that rewrite the base weight (PiSSA's residual, LoftQ)
   * use it so the new base is stored like the original.
   */
  makeFrozenLinear(name: string, weight: tf.Tensor2D, bias: tf.Variable | null): LinearModule;
  /** Number of optimizer updates the run will make (AdaLoRA's budget schedule needs it). */
  totalSteps: number;
  /**
   * Starting low-rank factors by layer name (LoftQ, from the run's {@link LoftqPlan}): A [r, in]
   * and B [out, r], row-major, with W ~ Q + B A. A method declaring `loftqPlan` starts each planned
   * layer's update from them instead of its own init; others never receive them.
   */
  initialFactors?: ReadonlyMap<string, { a: Float32Array; b: Float32Array }>;
  /**
   * Data-driven inits (LoRA's `init=eva|corda`): the input rows each named linear layer sees while
   * the frozen model reads seeded training items, recorded when called (the harness's
   * `bench/init_data.ts`; absent outside a run). Layers fed the same tensor share one array.
   */
  layerActivations?(names: readonly string[]): ReadonlyMap<string, LayerActivations>;
  /**
   * LoRA-GA's gradient estimate: per named linear layer, the mean over `batches` seeded training
   * batches of dLoss/dW [out, in] (row-major) at the frozen weights, computed when called.
   */
  weightGradients?(names: readonly string[], batches: number): ReadonlyMap<string, Float32Array>;
}

/** Input rows a linear layer saw: [rows, in] row-major, grouped by the sequence that produced them. */
export interface LayerActivations {
  /** The rows, row-major [rows, in]. */
  inputs: Float32Array;
  rows: number;
  /** Row index where each sequence starts, then `rows` (length: sequences + 1). */
  sequenceStarts: readonly number[];
}

/** The layers and rank whose LoftQ factors a method can start from (see `MethodDefinition.loftqPlan`). */
export interface LoftqPlan {
  /** Linear layer names, as `model.linears` keys. */
  targets: string[];
  /** Rank r of the factors. */
  rank: number;
}

/** The optimizer contract; AdamW implements it, methods may bring their own (GaLore). */
export interface Optimizer {
  /** Apply one update from gradients aligned with the variables; returns the global grad norm. */
  apply(grads: tf.Tensor[], lr: number): tf.Scalar;
  /** Bytes of optimizer state. */
  readonly stateBytes: number;
  dispose(): void;
}

/** Options the harness passes when a method builds its own optimizer. */
export interface OptimizerOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  clipNorm?: number;
}

/** A tensor to save, by name. */
export interface NamedArray {
  data: Float32Array;
  shape: number[];
}

/**
 * A Hugging Face PEFT export: `adapter_config.json` fields and the tensors of
 * `adapter_model.safetensors` under PEFT's keys, laid out for the base as `models/hf.ts` writes it
 * (q/k rows of interleaved-RoPE models permuted like the checkpoint).
 */
export interface PeftExport {
  config: Record<string, unknown>;
  tensors: Map<string, NamedArray>;
  /**
   * Set when no PEFT adapter on the original base can reproduce the run's function (why, in one
   * line, with the flag that avoids it); the PEFT files are then not written, only this reason.
   */
  refused?: string;
}

/** A method applied to a model. */
export interface AppliedMethod {
  /** Variables the optimizer updates (the harness adds the task head's own). */
  trainable: tf.Variable[];
  /** A term added to the loss (e.g. AdaLoRA's orthogonality penalty), computed inside the tape. */
  regularizer?: () => tf.Scalar;
  /**
   * Called after each optimizer update with the gradients that were applied (keyed by variable)
   * and the 0-based update index: AdaLoRA's importance scores and rank budget, projection refreshes.
   */
  afterStep?: (grads: Map<tf.Variable, tf.Tensor>, step: number) => void;
  /** A method-specific optimizer over `trainable` (GaLore); the harness uses AdamW otherwise. */
  makeOptimizer?: (options: OptimizerOptions) => Optimizer;
  /** Fold the adaptation into the base weights, leaving a plain model (mergeable methods only). */
  merge?: () => void;
  /** The adapter's own tensors by name, for saving as safetensors. */
  state(): Map<string, NamedArray>;
  /** Load tensors saved by `state()` into this (freshly applied) method. */
  loadState(tensors: Map<string, NamedArray>): void;
  /** Hugging Face PEFT layout (`adapter_config.json` + tensors with PEFT names), where it exists. */
  peftExport?: () => PeftExport;
  /** The weight update dW [out, in] of each adapted linear layer, for diagnostics (caller disposes). */
  deltaWeights?: () => Map<string, tf.Tensor2D>;
  /** Nominal rank of the update per adapted layer, where the method has one. */
  nominalRank?: number;
  /** Free the method's tensors (the model stays usable only after merge or with the method applied). */
  dispose(): void;
}

/**
 * Facts about a method that the registry-wide contract test (`methods/registry_contract_test.ts`)
 * checks on a tiny seeded model: every registered method declares them, derived from its paper or
 * the Hugging Face PEFT source, not from running the code.
 */
export interface MethodContract<C> {
  /** Options for the contract run on the tiny test model (small sizes; schema defaults fill the rest). */
  testOptions: Record<string, unknown>;
  /** True when the applied method leaves the frozen model's function unchanged before training. */
  identityAtInit: boolean;
  /** Largest logit difference accepted at init when identityAtInit (default 1e-6). */
  identityTolerance?: number;
  /** Largest logit difference between the merged plain model and the adapted one (default 1e-5). */
  mergeTolerance?: number;
  /** Closed-form number of trainable values on a model with this config, for the parsed options. */
  parameterCount(model: LlamaConfig, config: C): number;
  /**
   * The tensors `peftExport` writes (methods with `peftExport` only), as PEFT's
   * `get_peft_model_state_dict` lays them out: key `${layer}.${tensor}` (our layer name and PEFT's
   * tensor key, `layers.0.attn.q.lora_A.weight`; a shared tensor by its bare key, `vera_A`) -> shape.
   */
  peftTensors?(model: LlamaConfig, config: C): Map<string, number[]>;
}

/** A PEFT method: its name, option schema and how to apply it. */
export interface MethodDefinition<C = Record<string, unknown>> {
  /** Name used by `--method`. */
  name: string;
  /** One line for `--help`. */
  description: string;
  /** Options schema (strict: unknown options are errors), with defaults. */
  schema: z.ZodType<C>;
  /** True when `merge()` folds the method into plain weights. */
  mergeable: boolean;
  /**
   * Peak learning rate `bench` uses when `--lr` is not given (default 0.002). Methods with few
   * parameters or a multiplicative parametrisation train better with more (VeRA, prompt tuning).
   */
  defaultLr?: number;
  /** What the registry-wide contract test checks (required for every registered method). */
  contract?: MethodContract<C>;
  /**
   * Methods whose update is s B A on a frozen base (the LoRA family) declare the layers and rank
   * LoftQ initialises (`--loftq`); `apply` then starts from `ctx.initialFactors`. Absent: no LoftQ.
   */
  loftqPlan?(model: LlamaModel, config: C): LoftqPlan;
  /** Wrap the model; everything not returned as trainable stays frozen. */
  apply(model: LlamaModel, config: C, ctx: MethodContext): AppliedMethod;
}
