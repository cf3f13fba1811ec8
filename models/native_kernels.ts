/**
 * Fused kernels in C (`models/native/kernels.c`) for the `native` backend, called through Deno
 * FFI on the wasm heap without copies. Built by `deno task build-native`; when the library is
 * absent the native backend runs the same ops as tfjs graphs of wasm kernels (`ops.ts` picks).
 *
 * Why: with matmuls in OpenBLAS, the element-wise graphs around them took half of a LoRA train
 * step (tf.profile): the LM head's softmax cross-entropy over [tokens, vocab] (two Exp passes,
 * Max, Sum, Sub, a one-hot product), AdamW's ~15 ops per variable, RMSNorm, SwiGLU, RoPE and the
 * masked attention softmax, each a chain of single-threaded wasm passes plus tfjs' per-op
 * bookkeeping. Each becomes one C pass per direction.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { hashString } from "./util/rng.ts";
import { heapView, type WasmHeapBackend } from "./wasm_kernels.ts";

/** Fused softmax cross-entropy: inputs {logits [rows, cols], targets [rows] int32}, outputs [loss, probs]. */
export const SOFTMAX_XENT = "PeftSoftmaxXent";
/** Its gradient: inputs {probs, targets, dy}, output dLogits. */
export const SOFTMAX_XENT_GRAD = "PeftSoftmaxXentGrad";
/** One AdamW update: inputs {param, grad, m, v, scale}, attrs {@link AdamWAttrs}, outputs [param, m, v]. */
export const ADAMW = "PeftAdamW";
/** sum(x^2) as a scalar: input {x}. */
export const SUM_SQUARES = "PeftSumSquares";
/** RMSNorm over the last axis: inputs {x, gain}, attr eps, outputs [y, rstd]. */
export const RMS_NORM = "PeftRmsNorm";
/** Its gradient: inputs {x, gain, rstd, dy}, outputs [dx, dgain]. */
export const RMS_NORM_GRAD = "PeftRmsNormGrad";
/** silu(gate) * up: inputs {gate, up}. */
export const SWIGLU = "PeftSwiGlu";
/** Its gradient: inputs {gate, up, dy}, outputs [dgate, dup]. */
export const SWIGLU_GRAD = "PeftSwiGluGrad";
/** Rotary embedding of x [B, T, H, hd]: inputs {x, cos, sin} (tables [T, .., hd]), attrs {interleaved, sign}. */
export const ROPE = "PeftRope";

/** Causal attention softmax: input {scores [B, H, T, Tk]}, attrs {scale, prefix}, output probs. */
export const CAUSAL_SOFTMAX = "PeftCausalSoftmax";
/** Its gradient: inputs {probs, dy}, attr scale, output dScores. */
export const CAUSAL_SOFTMAX_GRAD = "PeftCausalSoftmaxGrad";

/** Where `deno task build-native` writes the library. */
export const KERNELS_LIBRARY = new URL("./native/libpeft_kernels.so", import.meta.url);
/** The kernels' C source. */
export const KERNELS_SOURCE = new URL("./native/kernels.c", import.meta.url);

/**
 * FNV-1a hash of the kernels' source text: compiled into the library by `deno task build-native`
 * and compared when it is opened, so a library built from another version of kernels.c (stale
 * after an update, with other kernel signatures) is never called.
 */
export function kernelsSourceHash(source = Deno.readTextFileSync(KERNELS_SOURCE)): number {
  return hashString(source);
}

const SYMBOLS = {
  peft_kernels_source_hash: { parameters: [], result: "u32" },
  peft_copy_cstring: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  peft_malloc_fixed_mmap_threshold: { parameters: [], result: "i32" },
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
  peft_rms_norm_fwd: {
    parameters: ["buffer", "buffer", "i32", "i32", "f32", "buffer", "buffer"],
    result: "void",
  },
  peft_rms_norm_bwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "buffer", "buffer"],
    result: "void",
  },
  peft_swiglu_fwd: { parameters: ["buffer", "buffer", "i32", "buffer"], result: "void" },
  peft_swiglu_bwd: { parameters: ["buffer", "buffer", "buffer", "i32", "buffer", "buffer"], result: "void" },
  peft_rope: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "i32", "f32", "buffer"],
    result: "void",
  },
  peft_causal_softmax_fwd: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "f32", "buffer"],
    result: "void",
  },
  peft_causal_softmax_bwd: {
    parameters: ["buffer", "buffer", "i32", "i32", "f32", "buffer"],
    result: "void",
  },
  peft_decode: { parameters: ["buffer", "i32", "i32", "buffer"], result: "void" },
  peft_gather_decode: { parameters: ["buffer", "i32", "i32", "buffer", "i32", "buffer"], result: "void" },
  peft_decode_absmax4: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "i32", "buffer"],
    result: "void",
  },
  peft_decode_absmax4_dq: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "f32",
      "i32",
      "i32",
      "i32",
      "buffer",
    ],
    result: "void",
  },
  peft_decode_rowwise_int8: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32", "buffer"],
    result: "void",
  },
  peft_decode_affine: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "i32", "buffer"],
    result: "void",
  },
} as const;

/** The kernel library's functions, as Deno FFI binds them. */
export type Kernels = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let kernels: Kernels | null = null;
let unavailable = "";

/** Open the kernel library once; null (see {@link nativeKernelsUnavailableReason}) when absent or stale. */
export function openNativeKernels(): Kernels | null {
  if (kernels || unavailable) return kernels;
  const opened = openKernelsAt(KERNELS_LIBRARY);
  if ("reason" in opened) unavailable = opened.reason;
  else {
    kernels = opened.kernels;
    // Freed large buffers go back to the system at once (see kernels.c): real-size runs' RSS.
    kernels.peft_malloc_fixed_mmap_threshold();
  }
  return kernels;
}

/** Open a kernels library at `path` and check it was built from the current kernels.c. */
export function openKernelsAt(path: URL | string): { kernels: Kernels } | { reason: string } {
  const rebuild = "run `deno task build-native`";
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (err) {
    return { reason: `fused kernels not built (${(err as Error).message.split("\n")[0]}); ${rebuild}` };
  }
  let expected: number;
  try {
    expected = kernelsSourceHash();
  } catch (err) {
    lib.close();
    return { reason: `fused kernels: cannot read ${KERNELS_SOURCE.pathname} (${(err as Error).message})` };
  }
  if (lib.symbols.peft_kernels_source_hash() !== expected) {
    lib.close();
    return { reason: `fused kernels library was built from another version of kernels.c; ${rebuild}` };
  }
  return { kernels: lib.symbols };
}

/** Why the fused kernels are not in use (empty when they are). */
export function nativeKernelsUnavailableReason(): string {
  return kernels ? "" : unavailable;
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

/** What a kernel body gets: its inputs, attributes, and helpers to allocate outputs and view data. */
interface KernelCall {
  inputs: Record<string, tf.TensorInfo>;
  attrs: Record<string, unknown>;
  /** Allocate an output; take {@link KernelCall.view}s only after the last output is made. */
  output(shape: number[], dtype?: tf.DataType): tf.TensorInfo;
  view(t: tf.TensorInfo): Float32Array | Int32Array;
}

const size = (t: tf.TensorInfo) => tf.util.sizeFromShape(t.shape);
const lastDim = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];

/** The kernels, each a thin call into kernels.c (shapes are checked by the ops in ops.ts). */
const BODIES: Record<string, (k: Kernels, c: KernelCall) => tf.TensorInfo | tf.TensorInfo[]> = {
  [SOFTMAX_XENT]: (k, { inputs: { logits, targets }, output, view }) => {
    const [rows, cols] = logits.shape;
    const loss = output([rows]);
    const probs = output([rows, cols]);
    k.peft_softmax_xent_fwd(view(logits), view(targets), rows, cols, view(loss), view(probs));
    return [loss, probs];
  },
  [SOFTMAX_XENT_GRAD]: (k, { inputs: { probs, targets, dy }, output, view }) => {
    const [rows, cols] = probs.shape;
    const dx = output(probs.shape);
    k.peft_softmax_xent_bwd(view(probs), view(targets), view(dy), rows, cols, view(dx));
    return dx;
  },
  [SUM_SQUARES]: (k, { inputs: { x }, output, view }) => {
    const out = output([]);
    view(out)[0] = k.peft_sum_squares(view(x), size(x));
    return out;
  },
  [ADAMW]: (k, { inputs: { param, grad, m, v, scale }, attrs, output, view }) => {
    const a = attrs as unknown as AdamWAttrs;
    const outs = [output(param.shape), output(m.shape), output(v.shape)];
    const hyper = new Float32Array([a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.c1, a.c2]);
    const [wo, mo, vo] = outs.map(view);
    k.peft_adamw(view(param), view(grad), view(m), view(v), view(scale), hyper, size(param), wo, mo, vo);
    return outs;
  },
  [RMS_NORM]: (k, { inputs: { x, gain }, attrs, output, view }) => {
    const d = lastDim(x);
    const y = output(x.shape);
    const rstd = output([size(x) / d]);
    k.peft_rms_norm_fwd(view(x), view(gain), size(x) / d, d, attrs.eps as number, view(y), view(rstd));
    return [y, rstd];
  },
  [RMS_NORM_GRAD]: (k, { inputs: { x, gain, rstd, dy }, output, view }) => {
    const d = lastDim(x);
    const dx = output(x.shape);
    const dgain = output(gain.shape);
    k.peft_rms_norm_bwd(view(x), view(gain), view(rstd), view(dy), size(x) / d, d, view(dx), view(dgain));
    return [dx, dgain];
  },
  [SWIGLU]: (k, { inputs: { gate, up }, output, view }) => {
    const h = output(gate.shape);
    k.peft_swiglu_fwd(view(gate), view(up), size(gate), view(h));
    return h;
  },
  [SWIGLU_GRAD]: (k, { inputs: { gate, up, dy }, output, view }) => {
    const dg = output(gate.shape);
    const du = output(up.shape);
    k.peft_swiglu_bwd(view(gate), view(up), view(dy), size(gate), view(dg), view(du));
    return [dg, du];
  },
  [ROPE]: (k, { inputs: { x, cos, sin }, attrs, output, view }) => {
    const [batch, t, heads, hd] = x.shape;
    const out = output(x.shape);
    const interleaved = attrs.interleaved ? 1 : 0;
    k.peft_rope(
      view(x),
      view(cos),
      view(sin),
      batch,
      t,
      heads,
      hd,
      interleaved,
      attrs.sign as number,
      view(out),
    );
    return out;
  },
  [CAUSAL_SOFTMAX]: (k, { inputs: { scores }, attrs, output, view }) => {
    const [t, tk] = scores.shape.slice(-2);
    const probs = output(scores.shape);
    const rows = size(scores) / tk;
    k.peft_causal_softmax_fwd(
      view(scores),
      rows,
      t,
      tk,
      attrs.prefix as number,
      attrs.scale as number,
      view(probs),
    );
    return probs;
  },
  [CAUSAL_SOFTMAX_GRAD]: (k, { inputs: { probs, dy }, attrs, output, view }) => {
    const tk = lastDim(probs);
    const ds = output(probs.shape);
    k.peft_causal_softmax_bwd(view(probs), view(dy), size(probs) / tk, tk, attrs.scale as number, view(ds));
    return ds;
  },
};

/** Names of every fused kernel. */
export const FUSED_KERNELS: readonly string[] = Object.keys(BODIES);

/** Register the fused kernels on `backendName` (a wasm-heap backend); false when not built. */
export function registerNativeKernels(backendName: string): boolean {
  const k = openNativeKernels();
  if (!k) return false;
  for (const [kernelName, body] of Object.entries(BODIES)) {
    if (tf.getKernel(kernelName, backendName)) continue;
    const kernelFunc = (
      args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
    ) => {
      const backend = args.backend as WasmHeapBackend;
      return body(k, {
        inputs: args.inputs as Record<string, tf.TensorInfo>,
        attrs: (args.attrs ?? {}) as Record<string, unknown>,
        output: (shape, dtype = "float32") => backend.makeOutput(shape, dtype),
        view: (t) => heapView(backend, t),
      });
    };
    tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
  }
  return true;
}

/** Run the fused kernel `name` on the active backend (check {@link hasKernel} first). */
export function runFused(
  name: string,
  inputs: tf.NamedTensorMap,
  attrs: object = {},
): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/** Whether the active backend has a kernel registered under `name`. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
