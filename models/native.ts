/**
 * The `native` backend: the tfjs wasm backend with its BatchMatMul kernel replaced by OpenBLAS's
 * `cblas_sgemm`, called through Deno FFI on the wasm heap without copies.
 *
 * Why: matmuls are ~95% of a train step's kernel time on wasm (tf.profile), and wasm's BatchMatMul
 * runs at 1-8 GFLOP/s on this project's shapes (0.3-2 with a transposed operand), while OpenBLAS
 * reaches ~160 GFLOP/s at 256^3 on the same 2 cores. Besides BatchMatMul, native replaces wasm's
 * Identity, Cast and GatherV2 with copy-free or row-copy versions, and registers the fused C
 * kernels of `native_kernels.ts` when they are built; every other kernel stays wasm's.
 *
 * `native` shares the wasm backend's instance (one heap, one set of kernel bindings): the wasm
 * kernels bind their C functions at setup time into module-level variables, so a second wasm
 * instance would leave those bindings pointing at whichever heap was set up last.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { heapView, type WasmHeapBackend } from "./wasm_kernels.ts";
import { openNativeKernels, registerNativeKernels } from "./native_kernels.ts";
import {
  STORED_DTYPE_CODE,
  STORED_GATHER,
  STORED_MATMUL,
  StoredTensor,
  type StoredWeight,
} from "./stored.ts";

/**
 * Library paths tried in order (Debian's libopenblas0-pthread first, then Fedora/Arch and Homebrew).
 * Absolute, because the tasks grant `--allow-ffi` for exactly these files (least privilege), and Deno
 * checks a bare soname against the working folder.
 */
export const OPENBLAS_CANDIDATES = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/lib/libopenblas.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
];

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const;

type OpenBlas = Deno.DynamicLibrary<typeof SYMBOLS>;

let library: { lib: OpenBlas; path: string } | null = null;
let loadError = "";

/** Open OpenBLAS once; null (with {@link nativeUnavailableReason}) when it cannot be loaded. */
export function openBlas(): { lib: OpenBlas; path: string } | null {
  if (library) return library;
  const errors: string[] = [];
  for (const path of OPENBLAS_CANDIDATES) {
    try {
      library = { lib: Deno.dlopen(path, SYMBOLS), path };
      return library;
    } catch (err) {
      errors.push(`${path}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  loadError = errors[0] ?? "unknown error";
  return null;
}

/** Why the native backend is unavailable (after {@link openBlas} returned null). */
export function nativeUnavailableReason(): string {
  return `OpenBLAS not loadable (${loadError}); install it with \`apt-get install libopenblas0-pthread\``;
}

/** OpenBLAS's thread count, when the library reports it. */
export function openBlasThreads(): number | null {
  const lib = openBlas()?.lib;
  return lib?.symbols.openblas_get_num_threads ? lib.symbols.openblas_get_num_threads() : null;
}

/**
 * The CPU core OpenBLAS chose its kernels for ("Haswell", "SkylakeX", "Zen"; settable with
 * `OPENBLAS_CORETYPE` on DYNAMIC_ARCH builds), when the library reports it. Runs on other cores
 * sum in another order, so records name it.
 */
export function openBlasCoreName(): string | null {
  const lib = openBlas()?.lib;
  const ptr = lib?.symbols.openblas_get_corename ? lib.symbols.openblas_get_corename() : null;
  // Copied by the fused kernels' helper: Deno's pointer views need unrestricted --allow-ffi.
  const kernels = openNativeKernels();
  if (!ptr || !kernels) return null;
  const buffer = new Uint8Array(64);
  const length = kernels.peft_copy_cstring(ptr, buffer, buffer.length);
  return new TextDecoder().decode(buffer.subarray(0, length)).trim() || null;
}

/**
 * C = op(A) op(B) for row-major float32 matrices through cblas_sgemm: A is [m, k] (or [k, m]
 * when transA), B is [k, n] (or [n, k] when transB), C is [m, n].
 */
export function sgemm(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
): void {
  const blas = openBlas();
  if (!blas) throw new Error(nativeUnavailableReason());
  blas.lib.symbols.cblas_sgemm(
    CBLAS_ROW_MAJOR,
    transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
    m,
    n,
    k,
    1,
    a,
    transA ? m : k,
    b,
    transB ? k : n,
    0,
    c,
    n,
  );
}

/**
 * C = alpha op(A) op(B) + beta C through cblas_sgemm with explicit leading dimensions, for blocks
 * of larger row-major matrices (a subarray starts each operand at its block).
 */
function sgemmStrided(
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  c: Float32Array,
  ldc: number,
  dims: { m: number; n: number; k: number; transB: boolean; beta: number },
): void {
  const blas = openBlas();
  if (!blas) throw new Error(nativeUnavailableReason());
  const { m, n, k, transB, beta } = dims;
  blas.lib.symbols.cblas_sgemm(
    CBLAS_ROW_MAJOR,
    CBLAS_NO_TRANS,
    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
    m,
    n,
    k,
    1,
    a,
    lda,
    b,
    ldb,
    beta,
    c,
    ldc,
  );
}

/**
 * Float32 values decoded from a stored weight go through one tile of at most this many values
 * (16 MiB), outside the wasm heap and reused by every call: a Qwen3-0.6B MLP weight (3072 x 1024)
 * fits whole, a 151936-row embedding table takes 38 blocks.
 */
export const STORED_TILE_FLOATS = 4 * 1024 * 1024;
let tile = new Float32Array(0);

/** A float32 view of `n` values of the shared decode tile, grown on first need. */
function tileOf(n: number): Float32Array {
  if (tile.length < n) tile = new Float32Array(Math.max(n, Math.min(STORED_TILE_FLOATS, 2 * tile.length)));
  return tile.subarray(0, n);
}

/**
 * Decode rows [row, row + count) of a stored weight into `out` (C kernel when built, else JS; a
 * row decoder decodes itself).
 */
function decodeRowsInto(w: StoredWeight, row: number, count: number, out: Float32Array): void {
  if (!(w instanceof StoredTensor)) return w.decodeRowsInto(row, count, out);
  const k = openNativeKernels();
  const begin = row * w.cols;
  const n = count * w.cols;
  if (k) k.peft_decode(w.data.subarray(begin, begin + n), STORED_DTYPE_CODE[w.dtype], n, out);
  else out.set(w.decodeRows(row, count));
}

/**
 * x W^T or x W for a frozen weight W [rows, cols] stored outside the heap (see STORED_MATMUL).
 * Float32 weights go to sgemm as they are; float16/bfloat16 weights (and the packed codes of a
 * quantized layer, through its `RowDecoder`) are decoded exactly into the tile, whole when they
 * fit, so both forms then make the same sgemm call as the dense path (`tf.matMul(x, W, false,
 * true)` and its gradient `dy W`), and give the same bits. Larger weights
 * run in blocks of rows: for x W^T each block is a block of output columns; for x W the blocks
 * split the inner dimension and accumulate (beta = 1). OpenBLAS picks its kernels and blocking by
 * the product's shape, so blocked results differ from one sgemm in the last bits (both forms).
 */
function storedMatMul(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { weight: w, transposeW } = args.attrs as unknown as { weight: StoredWeight; transposeW: boolean };
  const backend = args.backend as WasmHeapBackend;
  const [rows, cols] = w.shape;
  const k = transposeW ? cols : rows;
  const n = transposeW ? rows : cols;
  if (x.dtype !== "float32" || x.shape.length !== 2 || x.shape[1] !== k) {
    throw new Error(`stored matMul: input [${x.shape}] does not match weight [${w.shape}] (inner ${k})`);
  }
  const m = x.shape[0];
  const out = backend.makeOutput([m, n], "float32");
  const xv = heapView(backend, x) as Float32Array;
  const ov = heapView(backend, out) as Float32Array;
  if (m === 0 || n === 0) return out;
  const f32 = w instanceof StoredTensor && w.data instanceof Float32Array ? w.data : null;
  const whole = f32 !== null || rows * cols <= STORED_TILE_FLOATS;
  const single = 2 * m * n * k < SMALL_PRODUCT_FLOPS; // as nativeBatchMatMul decides, for equal bits
  if (single) setThreads(1);
  try {
    if (whole) {
      let wv: Float32Array;
      if (f32) wv = f32;
      else {
        wv = tileOf(rows * cols);
        decodeRowsInto(w, 0, rows, wv);
      }
      sgemm(xv, wv, ov, m, n, k, false, transposeW);
      return out;
    }
    const block = Math.max(1, Math.floor(STORED_TILE_FLOATS / cols));
    for (let r0 = 0; r0 < rows; r0 += block) {
      const nr = Math.min(block, rows - r0);
      const wv = tileOf(nr * cols);
      decodeRowsInto(w, r0, nr, wv);
      if (transposeW) {
        // out[:, r0:r0+nr] = x W[r0:r0+nr]^T
        sgemmStrided(xv, k, wv, cols, ov.subarray(r0), n, { m, n: nr, k, transB: true, beta: 0 });
      } else {
        // out += x[:, r0:r0+nr] W[r0:r0+nr]
        sgemmStrided(xv.subarray(r0), rows, wv, cols, ov, n, {
          m,
          n: cols,
          k: nr,
          transB: false,
          beta: r0 === 0 ? 0 : 1,
        });
      }
    }
  } finally {
    if (single) setThreads(defaultThreads);
  }
  return out;
}

/** Rows of a stored table by index (STORED_GATHER): decoded row copies, ids checked first. */
function storedGather(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { indices } = args.inputs as { indices: tf.TensorInfo };
  const { weight: w } = args.attrs as unknown as { weight: StoredTensor };
  const backend = args.backend as WasmHeapBackend;
  if (indices.dtype !== "int32") throw new Error("stored gather: indices must be int32");
  const [rows, cols] = w.shape;
  for (const r of heapView(backend, indices)) {
    if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
  }
  const out = backend.makeOutput([...indices.shape, cols], "float32");
  const ids = heapView(backend, indices) as Int32Array;
  const dst = heapView(backend, out) as Float32Array;
  const k = openNativeKernels();
  if (k) k.peft_gather_decode(w.data, STORED_DTYPE_CODE[w.dtype], cols, ids, ids.length, dst);
  else {
    for (let i = 0; i < ids.length; i++) dst.set(w.decodeRows(ids[i], 1), i * cols);
  }
  return out;
}

/** BatchMatMul through sgemm, with the batch broadcasting tfjs' wasm kernel supports (equal or 1). */
function nativeBatchMatMul(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const backend = args.backend as WasmHeapBackend;
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    throw new Error("BatchMatMul: native backend needs float32");
  }
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(`matMul: inner shapes ${k} and ${kb} of [${a.shape}] and [${b.shape}] must match`);
  }
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
    throw new Error(`matMul: batch sizes ${batchA} and ${batchB} cannot broadcast`);
  }
  const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  // Below ~20 MFLOP per product, waking OpenBLAS's second thread costs more than it saves
  // (measured: LoRA's 1024x8x128 takes 53 us on one thread, 70 us on two).
  const single = 2 * m * n * k < SMALL_PRODUCT_FLOPS;
  const out = backend.makeOutput([...outer, m, n], "float32");
  // Views are taken after makeOutput: growing the heap detaches older views.
  const av = heapView(backend, a) as Float32Array;
  const bv = heapView(backend, b) as Float32Array;
  const cv = heapView(backend, out) as Float32Array;
  if (single) setThreads(1);
  try {
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? 0 : i;
      const bi = batchB === 1 ? 0 : i;
      sgemm(
        av.subarray(ai * m * k, (ai + 1) * m * k),
        bv.subarray(bi * k * n, (bi + 1) * k * n),
        cv.subarray(i * m * n, (i + 1) * m * n),
        m,
        n,
        k,
        transposeA,
        transposeB,
      );
    }
  } finally {
    if (single) setThreads(defaultThreads);
  }
  return out;
}

/**
 * Identity without a copy: the output shares the input's buffer (reference-counted, as wasm's own
 * Reshape does). Why: wasm's Identity and same-dtype Cast copy their input, and tfjs' gradients of
 * Cast, Multiply and customGrad call them hundreds of times per train step (~10% of a LoRA step's
 * kernel time in tf.profile). Tensors are immutable, so sharing is safe.
 */
function sharedIdentity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  (args.backend as WasmHeapBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * GatherV2 along axis 0 (embedding lookups) as one row copy per index; other forms go to wasm's
 * kernel. Why: wasm's Gather computes every element's source index (7 ms for 1024 rows of 128 in
 * a train step's profile), a row copy is memcpy.
 */
function rowGather(wasmGather: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    if (
      axis !== 0 || batchDims !== 0 || indices.dtype !== "int32" ||
      (x.dtype !== "float32" && x.dtype !== "int32")
    ) {
      return wasmGather(args);
    }
    const backend = args.backend as WasmHeapBackend;
    const rows = x.shape[0];
    for (const r of heapView(backend, indices)) {
      if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
    }
    const slice = tf.util.sizeFromShape(x.shape.slice(1));
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const src = heapView(backend, x);
    const ids = heapView(backend, indices);
    const dst = heapView(backend, out);
    for (let i = 0; i < ids.length; i++) {
      dst.set(src.subarray(ids[i] * slice, (ids[i] + 1) * slice), i * slice);
    }
    return out;
  };
}

/** Products below this many FLOPs run on one OpenBLAS thread. */
const SMALL_PRODUCT_FLOPS = 20e6;
let defaultThreads = 1;

function setThreads(n: number): void {
  openBlas()?.lib.symbols.openblas_set_num_threads?.(n);
}

let registered = false;

/**
 * Register the `native` backend (wasm kernels + OpenBLAS BatchMatMul). Returns false, registering
 * nothing, when OpenBLAS cannot be loaded.
 */
export function registerNativeBackend(): boolean {
  if (registered) return true;
  if (!openBlas()) return false;
  defaultThreads = openBlasThreads() ?? 1;
  for (const config of tf.getKernelsForBackend("wasm")) {
    if (config.kernelName === tf.BatchMatMul || config.kernelName === tf.Identity) continue;
    if (config.kernelName === tf.GatherV2) {
      tf.registerKernel({ ...config, backendName: "native", kernelFunc: rowGather(config.kernelFunc) });
      continue;
    }
    if (config.kernelName === tf.Cast) {
      const wasmCast = config.kernelFunc;
      tf.registerKernel({
        ...config,
        backendName: "native",
        kernelFunc: (args) => {
          const { x } = args.inputs as { x: tf.TensorInfo };
          return (args.attrs as { dtype: string }).dtype === x.dtype ? sharedIdentity(args) : wasmCast(args);
        },
      });
      continue;
    }
    tf.registerKernel({ ...config, backendName: "native" });
  }
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName: "native",
    kernelFunc: sharedIdentity as tf.KernelFunc,
  });
  registerNativeKernels("native");
  tf.registerKernel({
    kernelName: STORED_MATMUL,
    backendName: "native",
    kernelFunc: storedMatMul as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: STORED_GATHER,
    backendName: "native",
    kernelFunc: storedGather as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: "native",
    kernelFunc: nativeBatchMatMul as tf.KernelFunc,
  });
  tf.registerBackend("native", () => {
    const wasm = tf.findBackend("wasm");
    if (!wasm) {
      throw new Error("native backend: initialise the wasm backend first (await tf.setBackend('wasm'))");
    }
    return wasm;
  }, -1);
  registered = true;
  return true;
}
