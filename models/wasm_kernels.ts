/**
 * Kernels the tfjs wasm backend lacks, registered from JS on its heap. UnsortedSegmentSum is
 * gather's gradient: with it, a trainable embedding table can use gather on wasm (and on `native`,
 * which copies wasm's kernels) instead of a one-hot matmul over the whole vocabulary.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";

/** The parts of tfjs' wasm backend that kernels written outside it use. */
export interface WasmHeapBackend {
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  incRef(dataId: unknown): void;
}

/**
 * A typed view of a tensor's data on the wasm heap (int32 for int32 tensors, else float32).
 * Take views after every makeOutput: growing the heap detaches older views.
 */
export function heapView(backend: WasmHeapBackend, t: tf.TensorInfo): Float32Array | Int32Array {
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  const n = tf.util.sizeFromShape(t.shape);
  const buffer = backend.wasm.HEAPU8.buffer;
  return t.dtype === "int32" ? new Int32Array(buffer, offset, n) : new Float32Array(buffer, offset, n);
}

/** out[s, ...] = sum of x[i, ...] over the i with segmentIds[i] = s (ids outside [0, n) ignored). */
function unsortedSegmentSum(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
) {
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = args.attrs as { numSegments: number };
  const backend = args.backend as WasmHeapBackend;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  // Views after makeOutput: growing the heap detaches older views.
  const xs = heapView(backend, x);
  const ids = heapView(backend, segmentIds);
  const os = heapView(backend, out);
  os.fill(0);
  const inner = ids.length > 0 ? xs.length / ids.length : 0;
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) os[dst + j] += xs[src + j];
  }
  return out;
}

let registered = false;

/** Register the extra kernels on the wasm backend (idempotent). */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  if (!tf.getKernel(tf.UnsortedSegmentSum, "wasm")) {
    tf.registerKernel({
      kernelName: tf.UnsortedSegmentSum,
      backendName: "wasm",
      kernelFunc: unsortedSegmentSum as tf.KernelFunc,
    });
  }
}
