/**
 * A frozen linear layer whose weight is stored quantized (packed codes + constants) and
 * dequantized on the fly, one layer at a time, in the forward pass AND again in the backward pass:
 * a custom gradient recomputes W from the packed codes for dX = dY W instead of letting the tape
 * keep the dequantized copy alive, so no full-precision copy of a frozen weight stays resident
 * between its uses. Gradients flow to the input (and so to adapters), never to the codes.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "../../models/linear.ts";
import { frozenLinear } from "../../models/ops.ts";
import { quantize, type QuantizedWeight } from "./quantize.ts";
import type { ResolvedQuantConfig } from "./config.ts";

/** A linear layer over a {@link QuantizedWeight}. */
export class QuantizedLinear implements LinearModule {
  readonly name: string;
  readonly weight: QuantizedWeight;
  readonly bias: tf.Variable | null;
  readonly #forward: (x: tf.Tensor2D) => tf.Tensor2D;

  constructor(name: string, weight: QuantizedWeight, bias: tf.Variable | null = null) {
    this.name = name;
    this.weight = weight;
    this.bias = bias;
    this.#forward = tf.customGrad(
      ((x: tf.Tensor) => {
        const w = weight.dequantize();
        const value = frozenLinear(x as tf.Tensor2D, w); // fast kernel form per backend (models/ops.ts)
        w.dispose();
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

  /** Quantize a dense weight [out, in] (copied out of the tensor; the tensor is not kept). */
  static fromDense(
    name: string,
    weight: tf.Tensor2D,
    config: ResolvedQuantConfig,
    bias: tf.Variable | null = null,
  ) {
    const data = weight.dataSync() as Float32Array;
    return new QuantizedLinear(name, quantize(data, weight.shape as [number, number], config), bias);
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
