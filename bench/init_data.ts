/**
 * The data that data-driven LoRA inits read (`--opt init=eva|corda|lora_ga`, see
 * methods/lora_data_init.ts), offered to a method as lazy providers on its `MethodContext`: nothing
 * is computed unless the method calls them (other methods and inits cost nothing).
 *
 * - `layerActivations(names)`: the frozen model reads {@link INIT_ITEMS} training items drawn from
 *   the run's seeded generator (whole sequences, at most {@link INIT_ROWS} rows in all, one forward
 *   pass each) and each named linear's input rows are recorded, grouped by sequence. Layers fed the
 *   same tensor (q, k, v; gate, up) share one array, as PEFT's EVA hashes equal inputs.
 * - `weightGradients(names, batches)`: the mean over `batches` seeded training batches (the run's
 *   batch size) of the task loss's gradient with respect to each named linear's weight, at the
 *   frozen weights (PEFT `preprocess_loraga`'s accumulated `weight.grad` / count). A zero trainable
 *   delta D [out, in] is added to each layer (y = f(x) + x D^T), so dL/dD = dL/dW for any base
 *   (plain, quantized or off-heap).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../models/linear.ts";
import { type RecordedInputs, recordLayerInputs, withWrappedLayers } from "../models/layer_inputs.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { Rng } from "../models/util/rng.ts";
import type { LayerActivations, MethodContext } from "../methods/types.ts";

/** Training items whose sequences the activation recording reads. */
export const INIT_ITEMS = 64;
/** Most input rows (tokens) recorded per layer: whole sequences up to this total. */
export const INIT_ROWS = 2048;

/** What the providers need of the run's task (a `TaskRunner`). */
export interface InitDataSource {
  readonly trainItems: number;
  trainSequences(items: readonly number[]): number[][];
  loss(items: number[]): tf.Scalar;
}

/**
 * Each named layer's input rows while `model.hidden` reads `sequences` one at a time (whole
 * sequences while the total stays within `maxRows`; a longer first one is cut to `maxRows`).
 * The model's layers are restored afterwards, even when the forward pass throws.
 */
export function recordLayerActivations(
  model: LlamaModel,
  names: readonly string[],
  sequences: readonly number[][],
  maxRows = INIT_ROWS,
): Map<string, LayerActivations> {
  const chosen: number[][] = [];
  let total = 0;
  for (const ids of sequences) {
    if (ids.length === 0) continue;
    if (total + ids.length > maxRows) {
      if (chosen.length === 0) chosen.push(ids.slice(0, maxRows));
      break;
    }
    chosen.push(ids);
    total += ids.length;
  }
  if (chosen.length === 0) throw new Error("init data: no training sequence to record layer inputs from");
  const recorded = recordLayerInputs(model, names, () => {
    for (const ids of chosen) {
      tf.tidy(() => {
        model.hidden(tf.tensor2d(ids, [1, ids.length], "int32"));
      });
    }
  });
  const out = new Map<string, LayerActivations>();
  const shared = new Map<RecordedInputs, LayerActivations>(); // layers that saw the very same tensors
  for (const name of names) {
    const r = recorded.get(name)!;
    if (r.callStarts.length !== chosen.length + 1) {
      throw new Error(
        `init data: layer '${name}' ran ${r.callStarts.length - 1} times for ${chosen.length} sequences`,
      );
    }
    if (!shared.has(r)) shared.set(r, { inputs: r.inputs, rows: r.rows, sequenceStarts: r.callStarts });
    out.set(name, shared.get(r)!);
  }
  return out;
}

/**
 * The mean over `batches` of d lossOf(batch) / dW [out, in] for each named linear, at its current
 * weight (row-major float32). The model's layers are restored afterwards.
 */
export function estimateWeightGradients(
  model: LlamaModel,
  names: readonly string[],
  lossOf: (items: number[]) => tf.Scalar,
  batches: readonly number[][],
): Map<string, Float32Array> {
  if (batches.length === 0) throw new Error("init data: the gradient estimate needs at least one batch");
  const deltas = new Map<string, tf.Variable>();
  const sums = new Map<string, Float64Array>();
  try {
    for (const name of names) {
      const layer = model.linears.get(name);
      if (!layer) throw new Error(`init data: no linear layer named '${name}'`);
      const d = tf.variable(tf.zeros([layer.outFeatures, layer.inFeatures]), true, `${name}.init_grad_probe`);
      deltas.set(name, d);
      sums.set(name, new Float64Array(layer.outFeatures * layer.inFeatures));
    }
    const vars = [...deltas.values()];
    const probed = (name: string, layer: LinearModule, x: tf.Tensor2D) =>
      tf.add(layer.forward(x), tf.matMul(x, deltas.get(name)!, false, true)) as tf.Tensor2D;
    withWrappedLayers(model, names, probed, () => {
      for (const items of batches) {
        const { value, grads } = tf.variableGrads(() => lossOf(items), vars);
        value.dispose();
        for (const [name, d] of deltas) {
          const g = grads[d.name];
          if (g) {
            const data = g.dataSync();
            const sum = sums.get(name)!;
            for (let i = 0; i < sum.length; i++) sum[i] += data[i];
          }
        }
        tf.dispose(Object.values(grads));
      }
    });
  } finally {
    for (const d of deltas.values()) d.dispose();
  }
  return new Map([...sums].map(([name, s]) => [name, Float32Array.from(s, (x) => x / batches.length)]));
}

/**
 * The lazy providers of a run (see the module doc), drawing items from `rng` (the run's
 * `rng.fork("init-data")`) so a seed fixes them.
 */
export function initDataProviders(
  model: LlamaModel,
  task: InitDataSource,
  batchSize: number,
  rng: Rng,
): Pick<MethodContext, "layerActivations" | "weightGradients"> {
  const items = (label: string) =>
    rng.fork(label).shuffle(Array.from({ length: task.trainItems }, (_, i) => i));
  return {
    layerActivations: (names) =>
      recordLayerActivations(model, names, task.trainSequences(items("activations").slice(0, INIT_ITEMS))),
    weightGradients: (names, batches) => {
      if (!Number.isInteger(batches) || batches < 1) {
        throw new Error(`init data: gradient batches must be an integer >= 1, got ${batches}`);
      }
      // Successive batches of one seeded order, reshuffled when the items run out.
      const order: number[] = [];
      const stream = rng.fork("gradients");
      const list = Array.from({ length: batches }, () => {
        while (order.length < batchSize) {
          order.push(...stream.shuffle(Array.from({ length: task.trainItems }, (_, i) => i)));
        }
        return order.splice(0, batchSize);
      });
      return estimateWeightGradients(model, names, (b) => task.loss(b), list);
    },
  };
}
