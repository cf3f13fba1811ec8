/**
 * The frozen base of a run: quantize the decoder's linears under the run's scheme (with LoftQ,
 * the planned layers' Q comes from LoftQ's alternating quantize/SVD and the returned factors start
 * the method's adapters), and count what the frozen model stores.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Linear, type LinearModule } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import { QuantizedLinear } from "../methods/quant/linear.ts";
import { quantize } from "../methods/quant/quantize.ts";
import { decodeAll, OffHeapLinear } from "../models/offheap_linear.ts";
import { loftqInit } from "../methods/quant/loftq.ts";
import { collectLayerInputs } from "../methods/quant/calibration.ts";
import { schemeModule } from "../methods/quant/schemes.ts";
import type { Calibration } from "../methods/quant/schemes/types.ts";
import type { ResolvedQuantConfig } from "../methods/quant/config.ts";
import type { MethodContext } from "../methods/types.ts";
import { collectGarbage } from "../models/util/gc.ts";
import type { RunRecord } from "./record.ts";
import type { ResolvedRun } from "./run_resolve.ts";

/** LoftQ's starting factors by layer name: A [r, in], B [out, r] with W ~ Q + B A. */
export type LoftqFactors = NonNullable<MethodContext["initialFactors"]>;

/** Input activations per decoder linear, for schemes that quantize against them (GPTQ). */
export type LayerCalibration = ReadonlyMap<string, Calibration>;

/** Input rows (tokens) kept per layer from those items. */
export const CALIBRATION_ROWS = 2048;
/** Rows of the fixed batch on which every quantized layer's output error is measured. */
export const OUTPUT_ERROR_ROWS = 256;
/** Released stored bytes after which quantizing collects garbage, so they leave the process. */
const COLLECT_EVERY_BYTES = 64 * 2 ** 20;

/**
 * The input rows each decoder linear sees while the full-precision model reads `sequences` (token
 * ids of training items), one sequence per forward pass: {@link CALIBRATION_ROWS} per layer for a
 * scheme that quantizes against them, else the {@link OUTPUT_ERROR_ROWS} on which the output error
 * is measured; empty when the run is unquantized. All layers are recorded in one pass of the
 * unquantized model (GPTQ's repository feeds each block the previous quantized blocks' outputs).
 */
export function calibrateFrozenBase(
  model: LlamaModel,
  run: ResolvedRun,
  sequences: readonly number[][],
): LayerCalibration {
  if (run.quant === null) return new Map();
  const rows = schemeModule(run.quant.scheme).needsCalibration ? CALIBRATION_ROWS : OUTPUT_ERROR_ROWS;
  const names = [...model.linears.keys()].filter((name) => name.startsWith("layers."));
  const forward = () => {
    for (const ids of sequences) {
      if (ids.length === 0) continue;
      tf.tidy(() => {
        model.hidden(tf.tensor2d(ids, [1, ids.length], "int32"));
      });
    }
  };
  return collectLayerInputs(model, names, forward, rows);
}

/** The calibration a scheme quantizes against: the recorded inputs when it needs them, else none. */
export function schemeCalibration(
  quant: ResolvedQuantConfig | null,
  calibration: LayerCalibration,
): LayerCalibration {
  return quant !== null && schemeModule(quant.scheme).needsCalibration ? calibration : new Map();
}

/**
 * Relative output error of a quantized layer on its first {@link OUTPUT_ERROR_ROWS} recorded input
 * rows X: ||f(X) - f_q(X)||_F^2 / ||f(X)||_F^2 with f the full-precision layer and f_q the quantized
 * one, each through its own forward (so llm-int8's outlier decomposition is what is measured).
 */
export function outputRelativeError(before: LinearModule, after: LinearModule, inputs: Calibration): number {
  const rows = Math.min(inputs.rows, OUTPUT_ERROR_ROWS);
  return tf.tidy(() => {
    const x = tf.tensor2d(inputs.inputs.subarray(0, rows * before.inFeatures), [rows, before.inFeatures]);
    const y = before.forward(x);
    const err = tf.sum(tf.square(tf.sub(y, after.forward(x))));
    return err.dataSync()[0] / tf.sum(tf.square(y)).dataSync()[0];
  });
}

/** Every linear module of the model, including the bases that method wrappers keep (each once). */
export function allLinears(model: LlamaModel): LinearModule[] {
  const seen = new Set<LinearModule>();
  const visit = (l: LinearModule) => {
    if (seen.has(l)) return;
    seen.add(l);
    const base = (l as { base?: LinearModule }).base;
    if (base) visit(base);
  };
  for (const l of model.linears.values()) visit(l);
  return [...seen];
}

/**
 * A frozen linear's weight values [out, in] as float32: an off-heap weight decoded straight from
 * its stored form (no heap tensor: at 1.5B a layer's transient copies would grow the wasm heap for
 * good), a heap weight copied out of its variable.
 */
function weightValues(layer: LinearModule): Float32Array {
  if (layer instanceof OffHeapLinear) return decodeAll(layer.weight);
  return layer.denseWeight().dataSync() as Float32Array;
}

/**
 * Replace every decoder linear (`layers.*`) by its quantized form, freeing the fp32 weights; a
 * no-op returning no factors when the run is unquantized. With LoftQ on, the layers of the
 * method's plan (`loftqPlan`, read before the method applies) get Q_T from LoftQ and their factors
 * (A_T, B_T) are returned for `MethodContext.initialFactors`.
 */
export function quantizeFrozenBase(
  model: LlamaModel,
  run: ResolvedRun,
  calibration: LayerCalibration = new Map(),
  outputErrors?: Map<string, number>,
): LoftqFactors {
  if (run.quant === null) return new Map();
  const plan = run.loftqIterations > 0
    ? run.method.definition.loftqPlan?.(model, run.method.options) ?? null
    : null;
  const loftq = plan && { targets: new Set(plan.targets), rank: plan.rank, iterations: run.loftqIterations };
  return quantizeDecoder(model, run.quant, { loftq, calibration, outputErrors });
}

/** What {@link quantizeDecoder} does besides quantizing. */
export interface QuantizeDecoderOptions {
  /** LoftQ on these layers (Q_T, and their factors returned), with this rank and alternating steps. */
  loftq?: { targets: ReadonlySet<string>; rank: number; iterations: number } | null;
  /** Recorded layer inputs: what a calibration-based scheme quantizes against, and output errors. */
  calibration?: LayerCalibration;
  /** Receives each layer's output error on its recorded inputs ({@link outputRelativeError}). */
  outputErrors?: Map<string, number>;
}

/**
 * Quantize the decoder linears (`layers.*`) of `model` under `q` in place, one layer at a time,
 * releasing each replaced weight; returns LoftQ's factors of the `loftq` layers (else none).
 */
export function quantizeDecoder(
  model: LlamaModel,
  q: ResolvedQuantConfig,
  { loftq = null, calibration = new Map(), outputErrors }: QuantizeDecoderOptions = {},
): LoftqFactors {
  const factors = new Map<string, { a: Float32Array; b: Float32Array }>();
  const schemeInputs = schemeCalibration(q, calibration);
  /** Quantize one layer in place; returns the stored bytes it released. */
  const replace = (name: string): number => {
    const layer = model.linears.get(name)!;
    const shape: [number, number] = [layer.outFeatures, layer.inFeatures];
    const values = weightValues(layer);
    if (loftq?.targets.has(name)) {
      const r = loftqInit(values, shape, { config: q, rank: loftq.rank, iterations: loftq.iterations });
      model.linears.set(name, new QuantizedLinear(name, r.quantized, layer.bias));
      factors.set(name, { a: r.a, b: r.b });
    } else {
      const inputs = schemeInputs.get(name) ?? null;
      model.linears.set(name, new QuantizedLinear(name, quantize(values, shape, q, inputs), layer.bias));
    }
    const recorded = calibration.get(name);
    if (outputErrors && recorded && recorded.rows > 0) {
      outputErrors.set(name, outputRelativeError(layer, model.linears.get(name)!, recorded));
    }
    model.params.get(`${name}.weight`)?.dispose();
    model.params.delete(`${name}.weight`);
    const releasedBytes = model.storedWeights.get(`${name}.weight`)?.storedBytes ?? 0;
    model.releaseStored(`${name}.weight`);
    return releasedBytes;
  };
  // One layer at a time, collecting garbage as released tables add up. Only `replace`'s finished
  // frame ever references a layer, so the collection frees it (a local here would keep the last).
  let released = 0;
  for (const name of [...model.linears.keys()].filter((n) => n.startsWith("layers."))) {
    released += replace(name);
    if (released >= COLLECT_EVERY_BYTES) {
      collectGarbage();
      released = 0;
    }
  }
  collectGarbage();
  return factors;
}

/**
 * Bytes a frozen linear's weight occupies where it is stored: packed codes of a quantized layer,
 * the checkpoint-precision bytes of an off-heap layer (`storedBytes`), or null for a plain layer
 * whose weight is a heap variable (counted with the variables).
 */
function storedWeightBytes(l: LinearModule): number | null {
  if (l instanceof QuantizedLinear) return l.weight.storedBytes;
  if (l instanceof Linear) return null;
  return l.storedBytes?.() ?? null;
}

/** Frozen parameters' stored bytes and count (quantized layers count their packed bytes). */
export function frozenFootprint(
  model: LlamaModel,
  trainable: ReadonlySet<tf.Variable>,
): { bytes: number; params: number } {
  // The frozen tensors the forward pass uses: every linear's weight (or packed codes) and bias as the
  // layers now hold them (a method may have replaced a base, e.g. PiSSA's residual), plus the
  // embedding and norm gains; each variable once.
  const vars = new Set<tf.Variable>();
  let bytes = 0;
  let params = 0;
  for (const l of allLinears(model)) {
    const stored = storedWeightBytes(l);
    if (stored !== null) {
      bytes += stored;
      params += l.inFeatures * l.outFeatures;
    } else if (l instanceof Linear) vars.add(l.weight);
    if (l.bias) vars.add(l.bias);
  }
  // An off-heap embedding table (also the tied head's weight).
  const table = model.storedWeights.get("embed.weight");
  if (table) {
    bytes += table.storedBytes;
    params += table.shape[0] * table.shape[1];
  }
  for (const [name, v] of model.params) {
    if (!model.linears.has(name.replace(/\.(weight|bias)$/, ""))) vars.add(v);
  }
  for (const v of vars) {
    if (trainable.has(v)) continue;
    bytes += 4 * v.size;
    params += v.size;
  }
  return { bytes, params };
}

/** The quantized linears' storage and the dequantization's latency cost on the frozen model. */
export function quantSummary(
  model: LlamaModel,
  config: ResolvedRun["config"],
  timing: Pick<RunRecord["timing"], "inferLatencyUnquantizedMs" | "inferLatencyQuantizedMs">,
): RunRecord["quant"] {
  let bytes = 0;
  let params = 0;
  for (const l of allLinears(model)) {
    if (!l.name.startsWith("layers.") && !(l instanceof QuantizedLinear)) continue;
    const stored = storedWeightBytes(l);
    if (stored === null && !(l instanceof Linear)) continue; // an adapter wrapper: its base is visited
    bytes += stored ?? 4 * l.inFeatures * l.outFeatures;
    params += l.inFeatures * l.outFeatures;
  }
  const before = timing.inferLatencyUnquantizedMs?.p50;
  const after = timing.inferLatencyQuantizedMs?.p50;
  return {
    ...config.quant,
    loftq: config.loftq,
    linearBytes: bytes,
    bitsPerParam: params > 0 ? (8 * bytes) / params : 32,
    dequantCostMs: before !== undefined && after !== undefined ? after - before : null,
  };
}
