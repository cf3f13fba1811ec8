/**
 * The method stage of a run: apply the resolved PEFT method to the (possibly quantized) model,
 * and size what it trains and stores.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import { countParameters } from "../models/config.ts";
import { Linear } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { Rng } from "../models/util/rng.ts";
import { writeSafetensors } from "../models/safetensors.ts";
import { QuantizedLinear } from "../methods/quant/linear.ts";
import type { AppliedMethod, MethodContext } from "../methods/types.ts";
import type { RunRecord } from "./record.ts";
import type { ResolvedRun } from "./run_resolve.ts";
import { frozenFootprint, type LayerCalibration, type LoftqFactors } from "./frozen_base.ts";

/**
 * The context a method applies under: frozen layers it rebuilds (PiSSA's residual, merges) are
 * stored like the run's base (quantized or fp32), LoftQ's factors, when any, start its adapters,
 * and `initData` (the run's `initDataProviders`, bench/init_data.ts) lets data-driven inits
 * (LoRA's `init=eva|corda|lora_ga`) record layer inputs or estimate gradients on demand.
 */
export function methodContext(
  run: ResolvedRun,
  rng: Rng,
  totalSteps: number,
  factors: LoftqFactors,
  calibration: LayerCalibration = new Map(),
  initData: Pick<MethodContext, "layerActivations" | "weightGradients"> = {},
): MethodContext {
  const quant = run.quant;
  return {
    rng,
    totalSteps,
    makeFrozenLinear: (name, weight, bias) =>
      quant
        ? QuantizedLinear.fromDense(name, weight, quant, bias, calibration.get(name) ?? null)
        : new Linear(name, variableOf(() => tf.clone(weight), false), bias),
    ...(factors.size > 0 ? { initialFactors: factors } : {}),
    ...initData,
  };
}

/** Apply the run's method to the model under `ctx`. */
export function applyMethod(model: LlamaModel, run: ResolvedRun, ctx: MethodContext): AppliedMethod {
  return run.method.definition.apply(model, run.method.options, ctx);
}

/**
 * Sizes of the adapted model: trainable values (method and task head), total parameters (the
 * base's, plus what trains, less base parameters the method trains in place), the adapter's
 * safetensors bytes, and the frozen parameters' stored bytes and bits per value.
 */
export function adaptedSize(
  model: LlamaModel,
  applied: AppliedMethod,
  headVars: tf.Variable[],
): RunRecord["size"] {
  const methodVars = applied.trainable;
  const allVars = [...methodVars, ...headVars];
  const frozen = frozenFootprint(model, new Set(allVars));
  const trainableParams = allVars.reduce((s, v) => s + v.size, 0);
  const baseParams = new Set(model.params.values());
  return {
    trainableParams,
    totalParams: countParameters(model.config) + trainableParams -
      methodVars.filter((v) => baseParams.has(v)).reduce((s, v) => s + v.size, 0),
    adapterBytes: writeSafetensors(
      new Map([...applied.state()].map(([n, t]) => [n, { data: t.data, shape: t.shape }])),
    ).length,
    frozenBytes: frozen.bytes,
    bitsPerFrozenParam: frozen.params > 0 ? (8 * frozen.bytes) / frozen.params : 0,
  };
}
