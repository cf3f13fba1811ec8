/**
 * What a run record keeps about a quantized base: per layer (scheme, stored bits, relative weight
 * error ||W - Ŵ||_F / ||W||_F, calibration rows, quantization time, llm-int8's outlier share) and
 * the run-level figures derived from them. The harness calls {@link quantLayerReport} after
 * training (so llm-int8's outlier shares cover every forward of the run).
 * @module
 */
import type { LinearModule } from "../../models/linear.ts";
import { QuantizedLinear, type QuantLayerStats } from "./linear.ts";

/** The record's quantization figures. */
export interface QuantLayerReport {
  /** Per quantized layer, by layer name. */
  layers: Record<string, QuantLayerStats>;
  /** Mean over layers of the relative Frobenius error (null when no layer has one). */
  meanRelativeError: number | null;
  /** Largest relative Frobenius error over layers (null when no layer has one). */
  maxRelativeError: number | null;
  /** llm-int8: outlier columns / input columns over every forward of every layer (null otherwise). */
  outlierShare: number | null;
  /** Sum over layers of calibration rows (tokens) used. */
  calibrationRows: number;
  /** Sum over layers of quantization wall time, ms. */
  quantizeMs: number;
}

/** The quantized base layer under a (possibly adapter-wrapped) module, or null. */
function quantizedBase(layer: LinearModule): QuantizedLinear | null {
  for (let l: LinearModule | undefined = layer; l; l = l.base) if (l instanceof QuantizedLinear) return l;
  return null;
}

/** Collect the figures from a model's linear layers (adapters are looked through to their base). */
export function quantLayerReport(linears: Iterable<[string, LinearModule]>): QuantLayerReport {
  const layers: Record<string, QuantLayerStats> = {};
  let errSum = 0;
  let errCount = 0;
  let errMax: number | null = null;
  let outliers = 0;
  let columns = 0;
  let anyForward = false;
  let calibrationRows = 0;
  let quantizeMs = 0;
  for (const [name, layer] of linears) {
    const q = quantizedBase(layer);
    if (!q) continue;
    const s = q.quantStats;
    layers[name] = s;
    if (s.relativeError !== null) {
      errSum += s.relativeError;
      errCount++;
      errMax = Math.max(errMax ?? 0, s.relativeError);
    }
    const f = q.weight.forwardStats;
    if (f) {
      anyForward = true;
      outliers += f.outlierColumns;
      columns += f.columns;
    }
    calibrationRows += s.calibrationRows;
    quantizeMs += s.quantizeMs;
  }
  return {
    layers,
    meanRelativeError: errCount > 0 ? errSum / errCount : null,
    maxRelativeError: errMax,
    outlierShare: anyForward ? (columns > 0 ? outliers / columns : 0) : null,
    calibrationRows,
    quantizeMs,
  };
}
