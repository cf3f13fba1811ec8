/**
 * Watching what linear layers read: each named layer is wrapped, for the duration of a run, by a
 * pass-through module that shows every input to a callback before the layer's own forward; the
 * originals are restored afterwards, even when the run throws. Calibration (GPTQ) and the
 * data-driven LoRA inits (EVA, CorDA) record their activations through it.
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
      forward(x: tf.Tensor2D): tf.Tensor2D {
        onInput(name, x);
        return layer.forward(x);
      },
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
