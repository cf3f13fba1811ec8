/**
 * `llm-int8`: LLM.int8() (Dettmers et al. 2022, "LLM.int8(): 8-bit Matrix Multiplication for
 * Transformers at Scale", section 3) as bitsandbytes' `MatMul8bitLt` runs it for a frozen int8 weight
 * (`Linear8bitLt(has_fp16_weights=False)`, the `int8_vectorwise_quant` + `int8_mixed_scaled_mm` path):
 *
 * - Storage: the weight's row-wise absmax int8 codes CB and one fp32 statistic per output row, exactly
 *   as `int8` (8 + 32/in bits/param). The weight is not split: outlier features are a property of the
 *   activations, found anew in every forward pass.
 * - Forward y = x W^T for x [N, in]: the outlier feature columns O = { j : max_n |x[n, j]| >= threshold }
 *   (default 6.0, the paper's alpha) go through a 16-bit product, fp16(x[:, O]) · fp16(Ŵ[:, O])^T with
 *   Ŵ the dequantized int8 weight (bitsandbytes dequantizes CB's outlier columns); every other column
 *   goes through vector-wise int8: per input row n, a_n = max_{j∉O} |x[n, j]|,
 *   cx = round(127 · x / a_n) (half to even), int8 x int8 products accumulated exactly (as int32:
 *   the sum is split into chunks of 1024 columns, each an exact integer below 2^24 in float32), then
 *   rescaled by (a_n / 127) · s_o, s_o = absmax_o(W) / 127.
 * - Backward: dX = dY · Ŵ (the dequantized weight, as bitsandbytes' backward for a frozen int8 weight).
 *
 * The share of outlier columns per forward is kept in the layer's {@link ForwardStats}. The 16-bit
 * path rounds its operands to fp16 and accumulates in fp32 (a tensor core's fp16 x fp16 -> fp32);
 * activations beyond fp16's range are clamped to ±65504 rather than becoming infinite.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { FP16_MAX, fromFp16Bits, toFp16Bits } from "../half.ts";
import {
  emptyCodes,
  packRowwiseInt8,
  rowwiseInt8,
  rowwiseInt8Layout,
  rowwiseInt8Rows,
  unpackN,
} from "./common.ts";
import type { ForwardStats, PackedWeight, QuantSchemeModule, ResolvedQuantConfig } from "./types.ts";

/** Input columns per exactly-accumulated int8 chunk: 1024 · 127² < 2^24. */
export const INT8_CHUNK = 1024;

/** Round to the nearest fp16 value (round half to even), clamped to ±65504. */
export function roundFp16(v: number): number {
  return fromFp16Bits(toFp16Bits(Math.max(-FP16_MAX, Math.min(FP16_MAX, v))));
}

/** fp16-rounded copy of a small tensor (the outlier columns), built on the host. */
function fp16Tensor(t: tf.Tensor2D): tf.Tensor2D {
  const v = Float32Array.from(t.dataSync() as Float32Array, roundFp16);
  return tf.tensor2d(v, t.shape);
}

/** Outlier input columns of x: max over rows of |x[:, j]| >= threshold (ascending). */
export function outlierColumns(x: tf.Tensor2D, threshold: number): number[] {
  const colmax = tf.tidy(() => tf.max(tf.abs(x), 0));
  const m = colmax.dataSync();
  colmax.dispose();
  const out: number[] = [];
  for (let j = 0; j < m.length; j++) if (m[j] >= threshold) out.push(j);
  return out;
}

/**
 * The LLM.int8() product for x [N, in] and a packed int8 weight; `stats` gets this call's outlier
 * count. Exported for tests and for the native kernels to mirror.
 */
export function llmInt8Forward(
  x: tf.Tensor2D,
  packed: PackedWeight,
  q: { shape: [number, number]; config: ResolvedQuantConfig },
  stats: ForwardStats,
): tf.Tensor2D {
  const [rows, cols] = q.shape;
  if (x.shape[1] !== cols) throw new Error(`llm-int8: input has ${x.shape[1]} features, the weight ${cols}`);
  const outliers = outlierColumns(x, q.config.outlierThreshold);
  stats.calls++;
  stats.outlierColumns += outliers.length;
  stats.columns += cols;
  stats.lastOutliers = outliers;
  return tf.tidy(() => {
    const codes = tf.reshape(tf.sub(unpackN(packed.tensors.packed, 8, rows * cols), 128), [rows, cols]);
    const sw = tf.reshape(packed.tensors.scales, [1, rows]); // s_o = absmax_o / 127
    let xi: tf.Tensor2D = x;
    if (outliers.length > 0) {
      const keep = new Float32Array(cols).fill(1);
      for (const j of outliers) keep[j] = 0;
      xi = tf.mul(x, tf.tensor2d(keep, [1, cols])); // outlier columns zeroed (they go the 16-bit way)
    }
    const a = tf.max(tf.abs(xi), 1, true); // [N, 1] row absmax of the int8 part
    const cx = tf.clipByValue(tf.round(tf.divNoNan(tf.mul(xi, 127), a)), -127, 127);
    let acc: tf.Tensor2D | null = null;
    for (let k0 = 0; k0 < cols; k0 += INT8_CHUNK) {
      const k = Math.min(INT8_CHUNK, cols - k0);
      const part = tf.matMul(tf.slice(cx, [0, k0], [-1, k]), tf.slice(codes, [0, k0], [-1, k]), false, true);
      acc = (acc ? tf.add(acc, part) : part) as tf.Tensor2D;
    }
    let y = tf.mul(tf.mul(acc!, tf.div(a, 127)), sw) as tf.Tensor2D;
    if (outliers.length > 0) {
      const idx = tf.tensor1d(outliers, "int32");
      const xo = fp16Tensor(tf.gather(x, idx, 1) as tf.Tensor2D);
      const wo = fp16Tensor(
        tf.mul(tf.gather(codes, idx, 1), tf.reshape(packed.tensors.scales, [rows, 1])) as tf.Tensor2D,
      );
      y = tf.add(y, tf.matMul(xo, wo, false, true));
    }
    return y;
  });
}

/** LLM.int8(): int8 weight, mixed-precision decomposition on the input at every forward. */
export const llmInt8: QuantSchemeModule<"llm-int8"> = {
  name: "llm-int8",
  summary:
    "LLM.int8(): int8 weight; per forward, input columns with some abs(x) >= outlierThreshold (6) in fp16, the rest vector-wise int8 x int8 (8 + 32/in bits/param)",
  options: ["outlierThreshold"],
  needsCalibration: false,
  quantize: (weight, shape, cfg) => ({ ...emptyCodes(cfg, shape), ...rowwiseInt8(weight, shape) }),
  dequantizeRows: rowwiseInt8Rows,
  layout: rowwiseInt8Layout,
  pack: packRowwiseInt8,
  forward: llmInt8Forward,
  // Its own mixed int8/fp16 product (and the tfjs decode of its backward) on every backend.
  nativeDecode: null,
};
