/**
 * Calibration inputs for the schemes that need them (GPTQ): the input rows each linear layer sees
 * while the full-precision model runs a few texts. Every named layer is wrapped, for the duration
 * of `run`, by a pass-through module that copies up to `maxRows` of its input rows; the originals
 * are restored afterwards, even when `run` throws.
 *
 * All layers are recorded from the unquantized model in one pass (GPTQ's repository quantizes
 * block by block, feeding each block the previous quantized blocks' outputs; this one-pass form
 * is the simpler variant the harness can afford, and it is what the record should say).
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../../models/linear.ts";
import type { Calibration } from "./schemes/types.ts";

/** Anything holding named linear layers (a `LlamaModel`). */
export interface HasLinears {
  /** Layers by name; entries are replaced during recording. */
  readonly linears: Map<string, LinearModule>;
}

/**
 * Run `run` (a forward pass over calibration texts) and return, per layer name, the first
 * `maxRows` input rows it saw, row-major [rows, in].
 */
export async function collectLayerInputs(
  model: HasLinears,
  names: readonly string[],
  run: () => void | Promise<void>,
  maxRows: number,
): Promise<Map<string, Calibration>> {
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new Error(`calibration rows must be an integer >= 1, got ${maxRows}`);
  }
  const seen = new Map<string, { parts: Float32Array[]; rows: number; cols: number }>();
  const originals = new Map<string, LinearModule>();
  for (const name of names) {
    const layer = model.linears.get(name);
    if (!layer) throw new Error(`calibration: no linear layer named '${name}'`);
    originals.set(name, layer);
    const store = { parts: [] as Float32Array[], rows: 0, cols: layer.inFeatures };
    seen.set(name, store);
    const recorder: LinearModule = {
      name: layer.name,
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
      bias: layer.bias,
      base: layer,
      forward(x: tf.Tensor2D): tf.Tensor2D {
        const room = maxRows - store.rows;
        if (room > 0) {
          const take = Math.min(room, x.shape[0]);
          store.parts.push((x.dataSync() as Float32Array).slice(0, take * store.cols));
          store.rows += take;
        }
        return layer.forward(x);
      },
      denseWeight: () => layer.denseWeight(),
    };
    model.linears.set(name, recorder);
  }
  try {
    await run();
  } finally {
    for (const [name, layer] of originals) model.linears.set(name, layer);
  }
  const out = new Map<string, Calibration>();
  for (const [name, s] of seen) {
    if (s.rows === 0) throw new Error(`calibration: layer '${name}' saw no input; give the run some texts`);
    const inputs = new Float32Array(s.rows * s.cols);
    let off = 0;
    for (const p of s.parts) {
      inputs.set(p, off);
      off += p.length;
    }
    out.set(name, { inputs, rows: s.rows });
  }
  return out;
}
