/**
 * Pieces shared by the method modules: wrapping target layers, trainable variables, state I/O and
 * the Hugging Face PEFT module names.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import { Linear, type LinearModule } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { Rng } from "../models/util/rng.ts";
import { hfModuleName } from "../models/util/hf_names.ts";
import type { AppliedMethod, MethodContext, NamedArray } from "./types.ts";

/** Method options that `bench` sets with a flag of their own (`--rank 8`); the others go through `--opt`. */
export const NAMED_OPTIONS: readonly string[] = ["rank", "alpha", "targets"];

/**
 * How a user sets method option `key` to `value` on the bench command line, for error hints:
 * `--rank 8` for the named options, `--opt initR=12` for the rest.
 */
export function optionFlag(key: string, value: unknown): string {
  return NAMED_OPTIONS.includes(key) ? `--${key} ${value}` : `--opt ${key}=${value}`;
}

/** A trainable float32 variable from data (unnamed: tfjs registers names globally). */
export function trainableVariable(data: Float32Array, shape: number[]): tf.Variable {
  return variableOf(() => tf.tensor(data, shape, "float32"), true);
}

/** A trainable variable filled with a constant. */
export function constantVariable(value: number, shape: number[]): tf.Variable {
  return trainableVariable(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape);
}

/**
 * Kaiming-uniform init as PyTorch's nn.Linear and PEFT's lora_A use it (a = sqrt(5)):
 * U(-b, b) with b = sqrt(6 / ((1 + a^2) fanIn)) = 1 / sqrt(fanIn).
 */
export function kaimingUniform(rng: Rng, shape: [number, number]): Float32Array {
  const bound = 1 / Math.sqrt(shape[1]);
  return rng.uniformArray(shape[0] * shape[1], -bound, bound);
}

/**
 * Trainable variables of one adapted layer, recorded in `vars` under `${layer}.${prefix}${key}`:
 * zeros, or Kaiming-uniform drawn from `rng.fork(`${layer}.${key}`)` (so each tensor's init is
 * independent of the others'; the fork label leaves out the name prefix).
 */
export function layerFactors(vars: Map<string, tf.Variable>, layer: string, rng: Rng, prefix = "") {
  const add = (key: string, shape: number[], data: Float32Array) => {
    const v = trainableVariable(data, shape);
    vars.set(`${layer}.${prefix}${key}`, v);
    return v;
  };
  return {
    zeros: (key: string, shape: number[]) => add(key, shape, new Float32Array(tf.util.sizeFromShape(shape))),
    kaiming: (key: string, shape: [number, number]) =>
      add(key, shape, kaimingUniform(rng.fork(`${layer}.${key}`), shape)),
  };
}

/**
 * Replace each target linear layer of the model with `wrap(base, name)` and return a function that
 * puts the originals back.
 */
export function wrapLinears<T extends LinearModule>(
  model: LlamaModel,
  targets: string[],
  wrap: (base: LinearModule, name: string) => T,
): { wrapped: Map<string, T>; restore: () => void } {
  const originals = new Map<string, LinearModule>();
  const wrapped = new Map<string, T>();
  for (const name of targets) {
    const base = model.linear(name);
    originals.set(name, base);
    const w = wrap(base, name);
    wrapped.set(name, w);
    model.linears.set(name, w);
  }
  return { wrapped, restore: () => originals.forEach((base, name) => model.linears.set(name, base)) };
}

/** One tensor's values and shape, for saving. */
export function namedArray(t: tf.Tensor): NamedArray {
  return { data: t.dataSync() as Float32Array, shape: [...t.shape] };
}

/** Read variables into named arrays (for `AppliedMethod.state`). */
export function stateOf(vars: Map<string, tf.Variable>): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [name, v] of vars) out.set(name, namedArray(v));
  return out;
}

/** Assign saved arrays to variables by name, with clear errors for missing or misshapen tensors. */
export function loadStateInto(vars: Map<string, tf.Variable>, tensors: Map<string, NamedArray>): void {
  for (const [name, v] of vars) {
    const t = tensors.get(name);
    if (!t) {
      throw new Error(`adapter file lacks tensor '${name}'; was it saved by the same method and targets?`);
    }
    if (t.data.length !== v.size) {
      throw new Error(`adapter tensor '${name}' has ${t.data.length} values, expected shape [${v.shape}]`);
    }
    v.assign(tf.tensor(t.data, v.shape, "float32"));
  }
}

/**
 * PEFT's module name for one of our linear layers: `get_peft_model` wraps the Hugging Face model
 * in `base_model.model`, so `layers.0.attn.q` -> `base_model.model.model.layers.0.self_attn.q_proj`.
 */
export function peftModuleName(name: string): string {
  return `base_model.model.${hfModuleName(name)}`;
}

/** PEFT `target_modules` entries (`q_proj`, ...) for a list of our layer names. */
export function peftTargetModules(names: string[]): string[] {
  return [...new Set(names.map((n) => hfModuleName(n).split(".").pop()!))].sort();
}

/** A context with plain fp32 frozen layers, for tests and unquantized runs. */
export function plainContext(rng: Rng, totalSteps = 100): MethodContext {
  return {
    rng,
    totalSteps,
    makeFrozenLinear: (name, weight, bias) =>
      new Linear(name, variableOf(() => tf.clone(weight), false), bias),
  };
}

/**
 * The AppliedMethod plumbing of a method that trains model parameters in place (full fine-tuning,
 * LN tuning, GaLore): their `trainable` flags are set now and restored by dispose (the trained
 * values stay), and they save and load by name. Merging is a no-op: the model is already plain.
 */
export function inPlaceMethod(
  params: Map<string, tf.Variable>,
  extra: Partial<AppliedMethod> = {},
): AppliedMethod {
  const vars = [...params.values()];
  const flags = vars.map((v) => v.trainable);
  for (const v of vars) v.trainable = true;
  return {
    trainable: vars,
    merge: () => {},
    state: () => stateOf(params),
    loadState: (t) => loadStateInto(params, t),
    ...extra,
    dispose: () => {
      vars.forEach((v, i) => (v.trainable = flags[i]));
      extra.dispose?.();
    },
  };
}

/**
 * The AppliedMethod plumbing of a method that owns named variables: they train, save and load by
 * name, and dispose() undoes the method's changes (`restore`) and frees them.
 */
export function ownedVariablesMethod(
  vars: Map<string, tf.Variable>,
  restore: () => void,
  extra: Partial<AppliedMethod> = {},
): AppliedMethod {
  return {
    trainable: [...vars.values()],
    state: () => stateOf(vars),
    loadState: (t) => loadStateInto(vars, t),
    dispose: () => {
      restore();
      tf.dispose([...vars.values()]);
    },
    ...extra,
  };
}
