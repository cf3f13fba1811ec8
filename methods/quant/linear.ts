/**
 * A frozen linear layer whose weight is stored quantized (packed codes + constants) and
 * dequantized on the fly, one layer at a time, in the forward pass AND again in the backward pass:
 * a custom gradient recomputes W from the packed codes for dX = dY W instead of letting the tape
 * keep the dequantized copy alive, so no full-precision copy of a frozen weight stays resident
 * between its uses. Gradients flow to the input (and so to adapters), never to the codes.
 *
 * On the native backend with its kernels built, a scheme that declares a C decoder
 * (`nativeDecode`: nf4, fp4, int4 with or without double quantization, int8, fp16, bf16, hqq4/3/2,
 * gptq4/3 with or without act-order) keeps its packed codes outside the wasm heap and multiplies
 * through the off-heap product (`native_decode.ts`, `models/offheap_linear.ts` storedLinear): the
 * codes are decoded in C, tile by tile, straight into `cblas_sgemm`'s operand, for x W^T and
 * dy W. Everywhere else (and for
 * LLM.int8(), whose outlier decomposition is its own product) the tfjs decode below runs; both give
 * the same W bit for bit.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../../models/linear.ts";
import { frozenLinear } from "../../models/ops.ts";
import { storedLinear } from "../../models/offheap_linear.ts";
import { nativeQuantizedWeight } from "./native_decode.ts";
import { quantize, type QuantizedWeight } from "./quantize.ts";
import type { ResolvedQuantConfig } from "./config.ts";
import type { Calibration } from "./schemes/types.ts";

/** Per-layer quantization figures for the run record. */
export interface QuantLayerStats {
  /** Scheme name. */
  scheme: string;
  /** Stored bits per parameter of this layer (from its packed tensors). */
  bitsPerParam: number;
  /** ||W - Ŵ||_F / ||W||_F of the dequantized weight (null when built from codes alone). */
  relativeError: number | null;
  /** Calibration rows (tokens) used (GPTQ), else 0. */
  calibrationRows: number;
  /** Wall time of quantizing this layer, ms. */
  quantizeMs: number;
  /** llm-int8: share of input columns routed to the fp16 path over all forwards so far; else null. */
  outlierShare: number | null;
  /** llm-int8: forward calls counted in outlierShare; else null. */
  forwardCalls: number | null;
}

/** A linear layer over a {@link QuantizedWeight}. */
export class QuantizedLinear implements LinearModule {
  readonly name: string;
  readonly weight: QuantizedWeight;
  readonly bias: tf.Variable | null;
  readonly #forward: (x: tf.Tensor2D) => tf.Tensor2D;

  /**
   * Wrap a quantized weight (consumed: on the native path its packed tensors move off the heap,
   * see the module doc) and an optional bias [out].
   */
  constructor(name: string, quantized: QuantizedWeight, bias: tf.Variable | null = null) {
    this.name = name;
    this.bias = bias;
    const native = nativeQuantizedWeight(quantized);
    const weight = this.weight = native?.weight ?? quantized;
    if (native) {
      const decoder = native.decoder;
      this.#forward = (x) => storedLinear(x, decoder);
      return;
    }
    this.#forward = tf.customGrad(
      ((x: tf.Tensor) => {
        // A scheme with its own product (llm-int8's mixed int8/fp16) computes y itself.
        let value = weight.matmul(x as tf.Tensor2D);
        if (!value) {
          const w = weight.dequantize();
          value = frozenLinear(x as tf.Tensor2D, w); // fast kernel form per backend (models/ops.ts)
          w.dispose();
        }
        const gradFunc = (dy: tf.Tensor) => {
          const wg = weight.dequantize();
          const dx = tf.matMul(dy as tf.Tensor2D, wg);
          wg.dispose();
          return [dx];
        };
        return { value, gradFunc };
        // deno-lint-ignore no-explicit-any
      }) as any,
    ) as (x: tf.Tensor2D) => tf.Tensor2D;
  }

  /**
   * Quantize a dense weight [out, in] (copied out of the tensor; the tensor is not kept).
   * Calibration schemes (GPTQ) need the layer's input rows (`calibration.ts` collects them).
   */
  static fromDense(
    name: string,
    weight: tf.Tensor2D,
    config: ResolvedQuantConfig,
    bias: tf.Variable | null = null,
    calibration: Calibration | null = null,
  ) {
    const data = weight.dataSync() as Float32Array;
    return new QuantizedLinear(
      name,
      quantize(data, weight.shape as [number, number], config, calibration),
      bias,
    );
  }

  /** What a run record keeps about this layer's quantization (see {@link QuantLayerStats}). */
  get quantStats(): QuantLayerStats {
    const w = this.weight;
    const f = w.forwardStats;
    return {
      scheme: w.scheme,
      bitsPerParam: w.bitsPerParam,
      relativeError: w.relativeError,
      calibrationRows: w.calibrationRows,
      quantizeMs: w.quantizeMs,
      outlierShare: f ? (f.columns > 0 ? f.outlierColumns / f.columns : 0) : null,
      forwardCalls: f ? f.calls : null,
    };
  }

  get inFeatures(): number {
    return this.weight.shape[1];
  }
  get outFeatures(): number {
    return this.weight.shape[0];
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const y = this.#forward(x);
    return this.bias ? tf.add(y, this.bias) as tf.Tensor2D : y;
  }

  /** A fresh dequantized copy [out, in]; the caller disposes it. */
  denseWeight(): tf.Tensor2D {
    return this.weight.dequantize();
  }

  dispose(): void {
    this.weight.dispose();
  }
}
