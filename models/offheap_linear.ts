/**
 * Frozen linear layers and embedding tables whose weights live outside the tfjs heap
 * ({@link StoredTensor}, in the checkpoint's precision), and the ops that use them.
 *
 * On the native backend the products and lookups are kernels that read activations from the wasm
 * heap without copies and decode the weight block by block into a tile outside it (`native.ts`),
 * so the heap holds only trainable parameters, optimizer state, activations and scratch. Other
 * backends decode the whole weight into a temporary tensor per call (correct, slower; they are
 * the reference the tests compare against).
 *
 * The weight is frozen: gradients flow to the input (dx = dy W), never to W, and no activation is
 * kept for the backward pass.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LinearModule } from "./linear.ts";
import { STORED_GATHER, STORED_MATMUL, StoredTensor, type StoredWeight } from "./stored.ts";

/** Whether the active backend multiplies with stored weights in place (native) rather than decoding them. */
export function storedKernelsActive(): boolean {
  return tf.getKernel(STORED_MATMUL, tf.getBackend()) !== undefined;
}

/** Every value of a stored weight as float32 [rows · cols] (a fresh array, or a view of F32 data). */
export function decodeAll(w: StoredWeight): Float32Array {
  if (w instanceof StoredTensor) return w.decodeRows();
  const out = new Float32Array(w.shape[0] * w.shape[1]);
  w.decodeRowsInto(0, w.shape[0], out);
  return out;
}

/** x W^T (transposeW) or x W with a stored W: native kernel, else a temporary decoded tensor. */
function storedProduct(x: tf.Tensor2D, w: StoredWeight, transposeW: boolean): tf.Tensor2D {
  if (storedKernelsActive()) {
    return tf.engine().runKernel(
      STORED_MATMUL,
      { x },
      { weight: w, transposeW } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
  }
  return tf.tidy(() => tf.matMul(x, tf.tensor2d(decodeAll(w), [...w.shape]), false, transposeW));
}

/**
 * y = x W^T for a frozen stored weight W [out, in] (a stored tensor or a quantized layer's row
 * decoder) and rows x [N, in], with the input gradient dx = dy W (no weight gradient, nothing
 * saved for the backward pass but W itself).
 */
export function storedLinear(x: tf.Tensor2D, w: StoredWeight): tf.Tensor2D {
  const f = tf.customGrad(
    ((input: tf.Tensor) => ({
      value: storedProduct(input as tf.Tensor2D, w, true),
      gradFunc: (dy: tf.Tensor) => [storedProduct(dy as tf.Tensor2D, w, false)],
    })) as AnyGradFunc,
  ) as (x: tf.Tensor) => tf.Tensor2D;
  return f(x);
}

/** Rows of a frozen stored table [vocab, dim] for flat ids [N] (int32 or float): [N, dim], no gradient. */
export function storedGather(table: StoredTensor, ids: tf.Tensor1D): tf.Tensor2D {
  const indices = ids.dtype === "int32" ? ids : tf.cast(ids, "int32");
  try {
    if (storedKernelsActive()) {
      return tf.engine().runKernel(
        STORED_GATHER,
        { indices },
        { weight: table } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor2D;
    }
    const idv = indices.dataSync();
    const [rows, cols] = table.shape;
    const out = new Float32Array(idv.length * cols);
    for (let i = 0; i < idv.length; i++) {
      const r = idv[i];
      if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
      out.set(table.decodeRows(r, 1), i * cols);
    }
    return tf.tensor2d(out, [idv.length, cols]);
  } finally {
    if (indices !== ids) indices.dispose();
  }
}

/**
 * A frozen linear layer y = x W^T + b whose W [out, in] is a {@link StoredTensor} outside the tfjs
 * heap. The bias (if any) stays a variable in the model's params, so bias-tuning methods still
 * train it.
 */
export class OffHeapLinear implements LinearModule {
  readonly name: string;
  readonly weight: StoredTensor;
  readonly bias: tf.Variable | null;

  /** Wrap a stored weight [out, in] and an optional bias [out]. */
  constructor(name: string, weight: StoredTensor, bias: tf.Variable | null = null) {
    this.name = name;
    this.weight = weight;
    this.bias = bias;
  }

  get inFeatures(): number {
    return this.weight.cols;
  }

  get outFeatures(): number {
    return this.weight.rows;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const y = storedLinear(x, this.weight);
    return this.bias ? tf.add(y, this.bias) as tf.Tensor2D : y;
  }

  /**
   * A fresh float32 tensor [out, in] of the weight (exactly decoded), for methods that need the
   * dense matrix (PiSSA, DoRA norms, diagnostics); the caller disposes it.
   */
  denseWeight(): tf.Tensor2D {
    return tf.tensor2d(this.weight.decodeRows(), this.weight.shape);
  }

  /** Bytes of the stored weight, held outside the tfjs heap (the bias is a variable, counted there). */
  storedBytes(): number {
    return this.weight.storedBytes;
  }
}

// deno-lint-ignore no-explicit-any
type AnyGradFunc = any;
