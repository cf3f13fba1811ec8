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

/** One layer's recorded input rows. */
export interface RecordedInputs {
  /** The rows, row-major [rows, in]. */
  inputs: Float32Array;
  rows: number;
  /** Row index where each recorded call's rows start, then `rows` (length: calls + 1). */
  callStarts: number[];
}

/**
 * Run `run` with every layer of `names` watched and return each one's input rows over its calls,
 * at most `maxRows` per layer (the call that reaches the cap is cut, later calls are skipped).
 * Layers fed the same tensors (q, k and v; gate and up) share one array, as PEFT's EVA hashes
 * equal inputs: at 1.5B that is a quarter less memory than a copy each.
 */
export function recordLayerInputs(
  model: HasLinears,
  names: readonly string[],
  run: () => void,
  maxRows = Infinity,
): Map<string, RecordedInputs> {
  const parts = new Map<string, Float32Array[]>(names.map((name) => [name, []]));
  const rowsSeen = new Map<string, number>(names.map((name) => [name, 0]));
  const copies = new WeakMap<object, Float32Array>(); // a tensor's data -> the rows taken from it
  watchLayerInputs(model, names, (name, x) => {
    const cols = x.shape[1];
    const take = Math.min(maxRows - rowsSeen.get(name)!, x.shape[0]);
    if (take <= 0) return;
    let rows = copies.get(x.dataId);
    if (rows === undefined || rows.length !== take * cols) {
      rows = (x.dataSync() as Float32Array).slice(0, take * cols);
      copies.set(x.dataId, rows);
    }
    parts.get(name)!.push(rows);
    rowsSeen.set(name, rowsSeen.get(name)! + take);
  }, run);
  const out = new Map<string, RecordedInputs>();
  const joined: { parts: Float32Array[]; recorded: RecordedInputs }[] = [];
  for (const name of names) {
    const p = parts.get(name)!;
    const same = joined.find((j) => j.parts.length === p.length && j.parts.every((q, i) => q === p[i]));
    const recorded = same?.recorded ??
      concatRows(p, rowsSeen.get(name)!, model.linears.get(name)!.inFeatures);
    if (!same) joined.push({ parts: p, recorded });
    out.set(name, recorded);
  }
  return out;
}

/** Concatenate row blocks of `cols` columns into one array, noting where each block starts. */
function concatRows(parts: readonly Float32Array[], rows: number, cols: number): RecordedInputs {
  const inputs = new Float32Array(rows * cols);
  const callStarts = [0];
  let row = 0;
  for (const p of parts) {
    inputs.set(p, row * cols);
    row += p.length / cols;
    callStarts.push(row);
  }
  return { inputs, rows, callStarts };
}
