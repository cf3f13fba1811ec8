/**
 * Quantized frozen weights as tfjs tensors, decoded on the fly.
 *
 * {@link quantize} packs the codes of `reference.ts` into int32 tensors plus float32 constants, as
 * the scheme module's `layout` says (see `pack.ts` for the bit layout); {@link QuantizedWeight.dequantize}
 * rebuilds a fresh float32 [out, in] tensor with tfjs ops each call (no float copy stays resident),
 * equal bit for bit to `dequantizeArray` on the cpu and wasm backends.
 *
 * storedBytes = 4 · (total elements of the stored tensors), checked against the layout. The shared
 * code tables (16 or 256 floats) are constants of the scheme, not of the weight, and are not counted
 * (bitsandbytes likewise shares one code per data type).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { QuantConfig, QuantScheme, ResolvedQuantConfig } from "./config.ts";
import {
  type Calibration,
  dequantizeArray,
  type QuantCodes,
  quantizeCodes,
  relativeError,
} from "./reference.ts";
import { schemeModule } from "./schemes.ts";
import type { ForwardStats } from "./schemes/types.ts";

/** A quantized [out, in] weight. */
export interface QuantizedWeight {
  /** The scheme. */
  readonly scheme: QuantScheme;
  /** The validated config it was built with. */
  readonly config: ResolvedQuantConfig;
  /** [out, in]. */
  readonly shape: [number, number];
  /** Bytes of all stored tensors (int32 and float32 elements, 4 bytes each). */
  readonly storedBytes: number;
  /** storedBytes · 8 / (out · in). */
  readonly bitsPerParam: number;
  /** The stored tensors, by name (the scheme's layout). */
  readonly tensors: Readonly<Record<string, tf.Tensor>>;
  /**
   * Relative Frobenius error ||W - Ŵ||_F / ||W||_F of the dequantized weight, when the weight was
   * quantized from a dense one here (null when built from codes alone).
   */
  readonly relativeError: number | null;
  /** Wall time of quantizing (codes and packing), ms. */
  readonly quantizeMs: number;
  /** Calibration rows (tokens) used, 0 for calibration-free schemes. */
  readonly calibrationRows: number;
  /** Forward statistics of schemes with their own product (llm-int8's outlier columns); else null. */
  readonly forwardStats: ForwardStats | null;
  /** A fresh float32 [out, in] tensor decoded from the stored tensors; the caller disposes it. */
  dequantize(): tf.Tensor2D;
  /** y = x W^T by the scheme's own product (llm-int8), or null when it has none (use dequantize()). */
  matmul(x: tf.Tensor2D): tf.Tensor2D | null;
  /** Free the stored tensors. */
  dispose(): void;
}

/**
 * Quantize a row-major float32 [out, in] weight (validates config and weight; one-line errors).
 * Schemes needing calibration (GPTQ) take the layer's input rows.
 */
export function quantize(
  weight: Float32Array,
  shape: [number, number],
  config: QuantConfig | ResolvedQuantConfig,
  calibration: Calibration | null = null,
): QuantizedWeight {
  const start = performance.now();
  const codes = quantizeCodes(weight, shape, config, calibration);
  const error = relativeError(weight, dequantizeArray(codes));
  return fromCodes(codes, {
    relativeError: error,
    calibrationRows: calibration && schemeModule(codes.config.scheme).needsCalibration ? calibration.rows : 0,
    start,
  });
}

/** Build the packed tensors and the decoder from reference codes. */
export function fromCodes(
  q: QuantCodes,
  extra: { relativeError?: number | null; calibrationRows?: number; start?: number } = {},
): QuantizedWeight {
  const start = extra.start ?? performance.now();
  const [rows, cols] = q.shape;
  const mod = schemeModule(q.config.scheme);
  const packed = mod.pack(q);
  const tensors = packed.tensors;
  const layout = mod.layout(q.shape, q.config);
  // The layout is the scheme's statement of what it stores: hold the packer to it.
  for (const spec of layout) {
    const t = tensors[spec.name];
    if (!t || t.size !== spec.length || t.dtype !== spec.dtype) {
      throw new Error(`${mod.name}: stored tensor '${spec.name}' does not match its layout`);
    }
  }
  if (Object.keys(tensors).length !== layout.length) {
    throw new Error(`${mod.name}: tensors beyond its layout`);
  }
  const storedBytes = Object.values(tensors).reduce((acc, t) => acc + 4 * t.size, 0);
  const forwardStats: ForwardStats | null = mod.forward
    ? { calls: 0, outlierColumns: 0, columns: 0, lastOutliers: [] }
    : null;
  // Closures keep only the shape and config, never the JS-side codes (the tensors replace them).
  const meta = { shape: q.shape, config: q.config };
  let disposed = false;
  const live = () => {
    if (disposed) throw new Error("dequantize() on a disposed QuantizedWeight; quantize the weight again");
  };
  return {
    scheme: q.config.scheme as QuantScheme,
    config: q.config,
    shape: [rows, cols],
    storedBytes,
    bitsPerParam: (storedBytes * 8) / (rows * cols),
    tensors,
    relativeError: extra.relativeError ?? null,
    quantizeMs: performance.now() - start,
    calibrationRows: extra.calibrationRows ?? 0,
    forwardStats,
    dequantize: () => {
      live();
      return tf.tidy(() => tf.reshape(packed.decode(), [rows, cols]) as tf.Tensor2D);
    },
    matmul: (x) => {
      if (!mod.forward) return null;
      live();
      return mod.forward(x, packed, meta, forwardStats!);
    },
    dispose: () => {
      disposed = true;
      for (const t of Object.values(tensors)) t.dispose();
    },
  };
}
