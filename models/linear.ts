/**
 * The seam where PEFT methods plug in: every linear layer of the model is a named
 * {@link LinearModule} held in the model's `linears` map (names like `layers.3.attn.q`,
 * `layers.3.mlp.down`). A method wraps a module by replacing the map entry with its own module
 * that keeps the original as its base; the model looks layers up by name on every forward pass.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { linear } from "./ops.ts";

/** A named linear map y = x W^T + b, W of shape [out, in] (PyTorch layout). */
export interface LinearModule {
  /** Dotted layer name, e.g. `layers.0.attn.q`. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Apply the layer to rows: x [N, in] -> [N, out]. */
  forward(x: tf.Tensor2D): tf.Tensor2D;
  /**
   * The dense weight [out, in] this layer currently computes with, without any adapter
   * (dequantized when the base is quantized). Callers dispose it unless it is a variable
   * (check with `tensor instanceof tf.Variable` or call inside `tf.tidy`).
   */
  denseWeight(): tf.Tensor2D;
  /** The bias [out], if any. */
  readonly bias: tf.Variable | null;
  /** The layer this one wraps (adapters keep the original as their base). */
  readonly base?: LinearModule;
  /**
   * Bytes of frozen weight the module holds outside tfjs tensors (an off-heap stored weight, see
   * `offheap_linear.ts`); absent when every weight it uses is a tensor. Footprint accounting adds
   * it to the variables' bytes.
   */
  storedBytes?(): number;
  /**
   * Frees tensors the module owns that the model's `params` do not hold (a quantized base's
   * codes); the model calls it, down the `base` chain, when it is disposed.
   */
  dispose?(): void;
}

/** A plain dense linear layer backed by variables. */
export class Linear implements LinearModule {
  readonly name: string;
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable | null;

  /** Wrap existing variables: weight [out, in], optional bias [out]. */
  constructor(name: string, weight: tf.Variable<tf.Rank.R2>, bias: tf.Variable | null = null) {
    this.name = name;
    this.weight = weight;
    this.bias = bias;
  }

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    // The fastest kernel forms per backend (see ops.ts); frozen weights skip dW altogether.
    const y = linear(x, this.weight);
    return this.bias ? tf.add(y, this.bias) as tf.Tensor2D : y;
  }

  denseWeight(): tf.Tensor2D {
    return this.weight;
  }
}
