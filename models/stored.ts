/**
 * Frozen weights kept outside the tfjs heap, in the precision the checkpoint stores them (float32,
 * float16 or bfloat16 bit patterns in plain JS typed arrays, never widened at load).
 *
 * Why: tfjs-backend-wasm's heap is wasm32 memory, capped at 4 GiB (`getHeapMax`), and the native
 * backend shares it. A Qwen3-0.6B-class model's weights as float32 tensors (2.4 GB) plus
 * activations and evaluation overflow it (`Aborted()`). Held in JS ArrayBuffers, a frozen matrix
 * costs its stored bytes once, and the native backend multiplies with it by decoding blocks of
 * rows into a small float32 tile that feeds `cblas_sgemm` (`native.ts`).
 * @module
 */
import { bf16ArrayToF32, f16ArrayToF32 } from "./safetensors.ts";

/** Storage precisions of a {@link StoredTensor}, as safetensors names them. */
export type StoredDtype = "F32" | "F16" | "BF16";

/** The numeric code of each dtype the C kernels take (`peft_decode` in `native/kernels.c`). */
export const STORED_DTYPE_CODE: Readonly<Record<StoredDtype, number>> = { F32: 0, F16: 1, BF16: 2 };

/** A frozen 2-D tensor [rows, cols] (row-major) held outside the tfjs heap in its stored precision. */
export class StoredTensor {
  readonly dtype: StoredDtype;
  /** Float32 values (F32) or float16/bfloat16 bit patterns (F16, BF16). */
  readonly data: Float32Array | Uint16Array;
  readonly shape: [number, number];

  /** Wrap stored data without copying; the length must match the shape and the array type the dtype. */
  constructor(dtype: StoredDtype, data: Float32Array | Uint16Array, shape: readonly number[]) {
    if (shape.length !== 2) throw new Error(`StoredTensor: needs a 2-D shape, got [${shape}]`);
    const wantFloat = dtype === "F32";
    if (wantFloat !== (data instanceof Float32Array)) {
      throw new Error(`StoredTensor: dtype ${dtype} needs a ${wantFloat ? "Float32Array" : "Uint16Array"}`);
    }
    if (data.length !== shape[0] * shape[1]) {
      throw new Error(`StoredTensor: ${data.length} values do not fill shape [${shape}]`);
    }
    this.dtype = dtype;
    this.data = data;
    this.shape = [shape[0], shape[1]];
  }

  /** Wrap float32 values (no copy). */
  static fromFloat32(data: Float32Array, shape: readonly number[]): StoredTensor {
    return new StoredTensor("F32", data, shape);
  }

  get rows(): number {
    return this.shape[0];
  }

  get cols(): number {
    return this.shape[1];
  }

  /** Bytes the stored values take (outside the tfjs heap). */
  get storedBytes(): number {
    return this.data.byteLength;
  }

  /**
   * Float32 values of rows [row, row + count) (default: all), decoded exactly (every float16 and
   * bfloat16 value is a float32 value). F32 data is returned as a view, not a copy.
   */
  decodeRows(row = 0, count = this.rows - row): Float32Array {
    const begin = row * this.cols;
    const end = (row + count) * this.cols;
    if (this.data instanceof Float32Array) return this.data.subarray(begin, end);
    const bits = this.data.subarray(begin, end);
    return this.dtype === "F16" ? f16ArrayToF32(bits) : bf16ArrayToF32(bits);
  }
}

/**
 * A frozen 2-D weight [rows, cols] in some other stored form (the packed codes of a quantized
 * layer, `methods/quant/native_decode.ts`) that decodes blocks of rows into a float32 tile. The
 * stored products treat it like a {@link StoredTensor} of a 16-bit dtype: decoded into the tile,
 * whole when it fits, else in blocks of rows.
 */
export interface RowDecoder {
  /** [rows, cols]. */
  readonly shape: readonly [number, number];
  /** Write the float32 values of rows [row, row + count) into out[0 .. count · cols). */
  decodeRowsInto(row: number, count: number, out: Float32Array): void;
}

/** What the stored product kernels multiply with: a stored tensor or a row decoder. */
export type StoredWeight = StoredTensor | RowDecoder;

/**
 * Kernel name of a product with a stored weight W [rows, cols]: input {x}, attrs
 * {weight: StoredWeight, transposeW}; x W^T (x [m, cols]) when transposeW, else x W (x [m, rows]).
 */
export const STORED_MATMUL = "PeftStoredMatMul";
/** Kernel name of a row lookup in a stored table: input {indices} (int32), attr {weight}; out [n, cols]. */
export const STORED_GATHER = "PeftStoredGather";
