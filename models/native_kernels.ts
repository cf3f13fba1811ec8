/**
 * Fused kernels in C (`models/native/kernels.c`) for the `native` backend, called through Deno
 * FFI on the wasm heap without copies. Built by `deno task build-native`; when the library is
 * absent the native backend runs the same ops as tfjs graphs of wasm kernels.
 *
 * Why: with matmuls in OpenBLAS, the LM head's softmax cross-entropy over [tokens, vocab] was the
 * largest remaining cost of a train step (tf.profile: two Exp passes, Max, Sum, Sub, a one-hot
 * product and casts, ~40% of the kernel time); one fused C pass each way removes most of it.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { heapView, type WasmHeapBackend } from "./wasm_kernels.ts";

/** Kernel name of the fused softmax cross-entropy: inputs {logits, targets}, outputs [loss, probs]. */
export const SOFTMAX_XENT = "PeftSoftmaxXent";
/** Kernel name of its gradient: inputs {probs, targets, dy}, output dLogits. */
export const SOFTMAX_XENT_GRAD = "PeftSoftmaxXentGrad";

/** Kernel name of one fused AdamW update: inputs {param, grad, m, v, scale}, outputs [param, m, v]. */
export const ADAMW = "PeftAdamW";
/** Kernel name of sum(x^2) as a scalar: input {x}. */
export const SUM_SQUARES = "PeftSumSquares";

/** kernels.c's `peft_kernels_version()` this loader expects. */
const ABI_VERSION = 2;

/** Where `deno task build-native` writes the library. */
export const KERNELS_LIBRARY = new URL("./native/libpeft_kernels.so", import.meta.url);

const SYMBOLS = {
  peft_kernels_version: { parameters: [], result: "i32" },
  peft_softmax_xent_fwd: {
    parameters: ["buffer", "buffer", "i32", "i32", "buffer", "buffer"],
    result: "void",
  },
  peft_softmax_xent_bwd: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "buffer"],
    result: "void",
  },
  peft_sum_squares: { parameters: ["buffer", "i32"], result: "f32" },
  peft_adamw: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "void",
  },
} as const;

type Kernels = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let kernels: Kernels | null = null;
let unavailable = "";

/** Open the kernel library once; null (see {@link nativeKernelsUnavailableReason}) when absent or stale. */
export function openNativeKernels(): Kernels | null {
  if (kernels || unavailable) return kernels;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(KERNELS_LIBRARY, SYMBOLS);
  } catch (err) {
    unavailable = `fused kernels not built (${
      (err as Error).message.split("\n")[0]
    }); run \`deno task build-native\``;
    return null;
  }
  const version = lib.symbols.peft_kernels_version();
  if (version !== ABI_VERSION) {
    lib.close();
    unavailable =
      `fused kernels library is version ${version}, expected ${ABI_VERSION}; rebuild with \`deno task build-native\``;
    return null;
  }
  kernels = lib.symbols;
  return kernels;
}

/** Why the fused kernels are not in use (empty when they are). */
export function nativeKernelsUnavailableReason(): string {
  return kernels ? "" : unavailable;
}

function softmaxXent(
  k: Kernels,
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown },
): tf.TensorInfo[] {
  const { logits, targets } = args.inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
  const backend = args.backend as WasmHeapBackend;
  const [rows, cols] = logits.shape;
  if (logits.dtype !== "float32" || targets.dtype !== "int32" || targets.shape[0] !== rows) {
    throw new Error(`${SOFTMAX_XENT}: needs float32 logits [rows, cols] and int32 targets [rows]`);
  }
  const loss = backend.makeOutput([rows], "float32");
  const probs = backend.makeOutput([rows, cols], "float32");
  k.peft_softmax_xent_fwd(
    heapView(backend, logits),
    heapView(backend, targets),
    rows,
    cols,
    heapView(backend, loss),
    heapView(backend, probs),
  );
  return [loss, probs];
}

function softmaxXentGrad(
  k: Kernels,
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown },
): tf.TensorInfo {
  const { probs, targets, dy } = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WasmHeapBackend;
  const [rows, cols] = probs.shape;
  const dx = backend.makeOutput([rows, cols], "float32");
  k.peft_softmax_xent_bwd(
    heapView(backend, probs),
    heapView(backend, targets),
    heapView(backend, dy),
    rows,
    cols,
    heapView(backend, dx),
  );
  return dx;
}

function sumSquares(k: Kernels, args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const backend = args.backend as WasmHeapBackend;
  const out = backend.makeOutput([], "float32");
  const value = k.peft_sum_squares(heapView(backend, x), tf.util.sizeFromShape(x.shape));
  heapView(backend, out)[0] = value;
  return out;
}

/** AdamW hyperparameters of one update, as {@link ADAMW}'s attributes. */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Bias corrections 1 - beta1^t and 1 - beta2^t. */
  c1: number;
  c2: number;
}

function adamw(
  k: Kernels,
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo[] {
  const { param, grad, m, v, scale } = args.inputs as Record<string, tf.TensorInfo>;
  const a = args.attrs as unknown as AdamWAttrs;
  const backend = args.backend as WasmHeapBackend;
  const outs = [param, m, v].map((t) => backend.makeOutput(t.shape, "float32"));
  const hyper = new Float32Array([a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.c1, a.c2]);
  const [wo, mo, vo] = outs.map((t) => heapView(backend, t));
  const view = (t: tf.TensorInfo) => heapView(backend, t);
  k.peft_adamw(
    view(param),
    view(grad),
    view(m),
    view(v),
    view(scale),
    hyper,
    tf.util.sizeFromShape(param.shape),
    wo,
    mo,
    vo,
  );
  return outs;
}

/** Register the fused kernels on `backendName` (a wasm-heap backend); false when not built. */
export function registerNativeKernels(backendName: string): boolean {
  const k = openNativeKernels();
  if (!k) return false;
  if (tf.getKernel(SOFTMAX_XENT, backendName)) return true;
  tf.registerKernel({
    kernelName: SOFTMAX_XENT,
    backendName,
    kernelFunc: ((args) => softmaxXent(k, args)) as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: SOFTMAX_XENT_GRAD,
    backendName,
    kernelFunc: ((args) => softmaxXentGrad(k, args)) as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: ADAMW,
    backendName,
    kernelFunc: ((args) => adamw(k, args)) as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: SUM_SQUARES,
    backendName,
    kernelFunc: ((args) => sumSquares(k, args)) as tf.KernelFunc,
  });
  return true;
}

/** Whether the active backend has a kernel registered under `name`. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
