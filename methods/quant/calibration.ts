/**
 * Calibration inputs for the schemes that need them (GPTQ): the input rows each linear layer sees
 * while the full-precision model runs a few texts, up to `maxRows` per layer
 * (`models/layer_inputs.ts` watches the layers).
 *
 * All layers are recorded from the unquantized model in one pass (GPTQ's repository quantizes
 * block by block, feeding each block the previous quantized blocks' outputs; this one-pass form
 * is the simpler variant the harness can afford, and it is what the record should say).
 * @module
 */
import { type HasLinears, watchLayerInputs } from "../../models/layer_inputs.ts";
import type { Calibration } from "./schemes/types.ts";

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
  for (const name of names) {
    const layer = model.linears.get(name);
    if (!layer) throw new Error(`calibration: no linear layer named '${name}'`);
    seen.set(name, { parts: [], rows: 0, cols: layer.inFeatures });
  }
  await watchLayerInputs(model, names, (name, x) => {
    const store = seen.get(name)!;
    const take = Math.min(maxRows - store.rows, x.shape[0]);
    if (take <= 0) return;
    store.parts.push((x.dataSync() as Float32Array).slice(0, take * store.cols));
    store.rows += take;
  }, run);
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
