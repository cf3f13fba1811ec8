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
import { type HasLinears, recordLayerInputs } from "../../models/layer_inputs.ts";
import type { Calibration } from "./schemes/types.ts";

/**
 * Run `run` (a forward pass over calibration texts) and return, per layer name, the first
 * `maxRows` input rows it saw, row-major [rows, in].
 */
export function collectLayerInputs(
  model: HasLinears,
  names: readonly string[],
  run: () => void,
  maxRows: number,
): Map<string, Calibration> {
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new Error(`calibration rows must be an integer >= 1, got ${maxRows}`);
  }
  for (const name of names) {
    if (!model.linears.has(name)) throw new Error(`calibration: no linear layer named '${name}'`);
  }
  const recorded = recordLayerInputs(model, names, run, maxRows);
  for (const [name, r] of recorded) {
    if (r.rows === 0) throw new Error(`calibration: layer '${name}' saw no input; give the run some texts`);
  }
  return recorded;
}
