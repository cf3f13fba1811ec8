/**
 * Linear layers wrapped for the duration of a run, restored afterwards even when the run throws:
 * watching what they read (GPTQ calibration, the EVA/CorDA activations) or adding a probe to their
 * output (LoRA-GA's weight gradients).
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "./linear.ts";

/** Anything holding named linear layers (a `LlamaModel`). */
export interface HasLinears {
  /** Layers by name; entries are replaced while watched. */
  readonly linears: Map<string, LinearModule>;
}

/**
 * Run `run` with every layer of `names` replaced by a pass-through whose forward is
 * `forward(name, layer, x)` (`layer` the original), then restore the layers, even when `run`
 * throws; `run` may return a promise, awaited before the layers are restored.
 */
export function withWrappedLayers<T>(
  model: HasLinears,
  names: readonly string[],
  forward: (name: string, layer: LinearModule, x: tf.Tensor2D) => tf.Tensor2D,
  run: () => T,
): T {
  const originals = new Map<string, LinearModule>();
  for (const name of names) {
    const layer = model.linears.get(name);
    if (!layer) throw new Error(`no linear layer named '${name}'`);
    originals.set(name, layer);
  }
  for (const [name, layer] of originals) {
    model.linears.set(name, {
      name: layer.name,
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
      bias: layer.bias,
      base: layer,
      forward: (x: tf.Tensor2D) => forward(name, layer, x),
      denseWeight: () => layer.denseWeight(),
    });
  }
  const restore = () => {
    for (const [name, layer] of originals) model.linears.set(name, layer);
  };
  let result: T;
  try {
    result = run();
  } catch (err) {
    restore();
    throw err;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

/**
 * Run `run` with every layer of `names` showing its inputs to `onInput(name, x)` (x is the
 * layer's input [rows, in]; copy what you keep, it is freed after the pass), then restore the
 * layers; `run` may return a promise, awaited before the layers are restored.
 */
export function watchLayerInputs<T>(
  model: HasLinears,
  names: readonly string[],
  onInput: (name: string, x: tf.Tensor2D) => void,
  run: () => T,
): T {
  return withWrappedLayers(model, names, (name, layer, x) => {
    onInput(name, x);
    return layer.forward(x);
  }, run);
}
