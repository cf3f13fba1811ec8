/**
 * Shared pieces of the LoRA variants (DoRA, PiSSA, VeRA, AdaLoRA, OrthoGeoLoRA): a detached
 * (stop-gradient) computation, wrapping the targets with LoRA's options, and the PEFT `LoraConfig`
 * fields and tensors they export. Their {@link AppliedMethod} comes from `adaptedMethod`
 * (`wrapped.ts`), like every method on adapted linear layers.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { Rng } from "../models/util/rng.ts";
import type { NamedArray } from "./types.ts";
import { selectTargets } from "./targets.ts";
import { kaimingUniform, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { outputRows, peftTargetFields } from "./peft_export.ts";
import type { LlamaConfig } from "../models/config.ts";
import { checkRank, type LoraConfig } from "./lora.ts";
import type { AdaptedLinear } from "./wrapped.ts";

/**
 * `fn` as a function whose inputs receive zero gradient (PyTorch's `.detach()`): tfjs has no
 * stopGradient op, so the computation runs inside `tf.customGrad`, whose forward is one tape node
 * (the ops inside are not recorded) and whose gradient is zero for every input.
 */
export function detached<T extends tf.Tensor>(
  fn: (...inputs: tf.Tensor[]) => T,
): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    // customGrad appends its save function to the inputs.
    const inputs = args.slice(0, -1) as tf.Tensor[];
    return { value: fn(...inputs), gradFunc: () => inputs.map((t) => tf.zerosLike(t)) };
  }) as (...inputs: tf.Tensor[]) => T;
}

/** A trainable Kaiming-uniform variable (LoRA's lora_A init) of the given shape. */
export function kaimingVariable(rng: Rng, shape: [number, number]): tf.Variable {
  return trainableVariable(kaimingUniform(rng, shape), shape);
}

/**
 * Wrap the targets of a method with LoRA's options: checks the rank against each layer and calls
 * `build(base, name, scale, vars)` with s = alpha / r and the map the layer's variables go into.
 */
export function wrapLoraTargets<T extends AdaptedLinear>(
  model: LlamaModel,
  config: LoraConfig,
  build: (base: LinearModule, name: string, scale: number, vars: Map<string, tf.Variable>) => T,
): { targets: string[]; wrapped: Map<string, T>; restore: () => void; vars: Map<string, tf.Variable> } {
  const targets = selectTargets(model, config.targets);
  const vars = new Map<string, tf.Variable>();
  const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
    checkRank(config.rank, base);
    return build(base, name, config.alpha / config.rank, vars);
  });
  return { targets, wrapped, restore, vars };
}

/**
 * PEFT `lora_A.weight` / `lora_B.weight` tensors from each layer's LoRA-equivalent pair [A, B], B's
 * rows in the Hugging Face checkpoint's order of the model with config `model` (peft_export.ts).
 */
export function loraPairTensors<T>(
  wrapped: Map<string, T>,
  pair: (layer: T) => [tf.Tensor, tf.Tensor],
  model: LlamaConfig,
): Map<string, NamedArray> {
  const tensors = new Map<string, NamedArray>();
  for (const [name, l] of wrapped) {
    const m = peftModuleName(name);
    const [a, b] = tf.tidy(() => pair(l));
    tensors.set(`${m}.lora_A.weight`, namedArray(a));
    tensors.set(`${m}.lora_B.weight`, outputRows(name, b, model));
    tf.dispose([a, b]);
  }
  return tensors;
}

/**
 * The fields of a PEFT `LoraConfig` (adapter_config.json) for plain-LoRA-shaped exports on a model
 * with config `model` (its layer count decides `layers_to_transform`, see peft_export.ts).
 */
export function peftLoraConfig(
  model: LlamaConfig,
  targets: string[],
  r: number,
  alpha: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r,
    lora_alpha: alpha,
    lora_dropout: 0,
    ...peftTargetFields(targets, model.nLayers),
    bias: "none",
    use_rslora: false,
    use_dora: false,
    fan_in_fan_out: false,
    init_lora_weights: true,
    base_model_name_or_path: null,
    ...extra,
  };
}

/** A tensor's values as a saved array (with an optional new shape). */
export function namedArray(
  t: tf.Tensor,
  shape: number[] = [...t.shape],
): { data: Float32Array; shape: number[] } {
  return { data: t.dataSync() as Float32Array, shape };
}
