/**
 * Quantized frozen weights on the native backend: the packed codes leave the wasm heap (plain JS
 * buffers, the same words `pack` built) and the C kernels of `models/native/kernels.c` decode
 * them block by block into the float32 tile that feeds `cblas_sgemm`, for x W^T and dy W alike
 * (`models/native.ts` storedMatMul, through {@link RowDecoder}).
 *
 * Why: decoding with tfjs ops costs a dozen wasm passes over out · in elements per product (unpack
 * by bit masks, gathers, pads, a product) plus tfjs' per-op bookkeeping; on the default bench a
 * QLoRA (nf4) train step took 4.9x a LoRA step and inference 85x. One C pass per tile is a table
 * lookup and a multiply per element. And the packed codes of a large model (0.4 GB for a 0.6B model
 * in nf4) no longer count against the 4 GiB wasm heap.
 *
 * Which schemes: those whose module declares a `nativeDecode` (schemes/types.ts): nf4, fp4, int4
 * (with or without double quant), int8, fp16, bf16, and the affine group codes of hqq4/3/2 and
 * gptq4/3 (with act-order's g_idx too). LLM.int8() (its outlier decomposition is its own product,
 * not a weight decode) keeps the tfjs path on every backend, as every scheme does off native or
 * when the kernels are not built (`deno task build-native`; native then says so once).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type Kernels, openNativeKernels } from "../../models/native_kernels.ts";
import { decodeAll, storedKernelsActive } from "../../models/offheap_linear.ts";
import { type RowDecoder, STORED_DTYPE_CODE } from "../../models/stored.ts";
import type { QuantizedWeight } from "./quantize.ts";
import { schemeModule } from "./schemes.ts";
import type { NativeDecode } from "./schemes/types.ts";

/** The packed words are read byte by byte in the order pack.ts writes them: little-endian hosts only. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes of a typed array, as a view (no copy). */
function bytesOf(a: Int32Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Decodes rows of a quantized weight [out, in] from its packed buffers (held outside the wasm
 * heap) with the C kernels, equal to the scheme's `dequantizeRows` bit for bit.
 */
export class PackedRowDecoder implements RowDecoder {
  readonly shape: readonly [number, number];
  /** The packed buffers by layout name (int32 words and float32 constants). */
  #arrays: Record<string, Int32Array | Float32Array> | null;
  readonly #decode: (start: number, n: number, row: number, count: number, out: Float32Array) => void;

  /**
   * Wrap packed buffers (the scheme's layout, by name; not copied) of a weight `shape` quantized
   * with `blockSize`; throws one line when a buffer the descriptor reads is missing.
   */
  constructor(
    spec: NativeDecode,
    shape: readonly [number, number],
    blockSize: number,
    arrays: Record<string, Int32Array | Float32Array>,
    kernels: Kernels,
  ) {
    if (!LITTLE_ENDIAN) throw new Error("native quantized decode needs a little-endian host");
    const [rows, cols] = shape;
    if (rows * cols >= 2 ** 31) {
      throw new Error(`native quantized decode: [${shape}] has 2^31 elements or more`);
    }
    this.shape = [rows, cols];
    this.#arrays = arrays;
    const need = <T extends Int32Array | Float32Array>(name: string, type: new (n: number) => T): T => {
      const a = arrays[name];
      if (!(a instanceof type)) {
        throw new Error(`native quantized decode (${spec.kind}): no '${name}' buffer`);
      }
      return a as T;
    };
    if (spec.kind === "absmax4") {
      const packed = bytesOf(need("packed", Int32Array));
      if (arrays.scaleCodes) {
        const codes = bytesOf(need("scaleCodes", Int32Array));
        const groups = need("scaleBlockScales", Float32Array);
        const mean = need("scaleMean", Float32Array)[0];
        this.#decode = (start, n, _row, _count, out) =>
          kernels.peft_decode_absmax4_dq(
            packed,
            spec.table,
            codes,
            spec.dqTable,
            groups,
            spec.dqBlockSize,
            mean,
            blockSize,
            start,
            n,
            out,
          );
      } else {
        const scales = need("scales", Float32Array);
        this.#decode = (start, n, _row, _count, out) =>
          kernels.peft_decode_absmax4(packed, spec.table, scales, blockSize, start, n, out);
      }
    } else if (spec.kind === "rowwise-int8") {
      const packed = bytesOf(need("packed", Int32Array));
      const scales = need("scales", Float32Array);
      this.#decode = (_start, _n, row, count, out) =>
        kernels.peft_decode_rowwise_int8(packed, scales, cols, row, count, out);
    } else if (spec.kind === "affine") {
      const per = Math.floor(32 / spec.bits);
      const groups = Math.ceil(cols / blockSize);
      const words = need("packed", Int32Array);
      const scales = need("scales", Float32Array);
      const zeros = need("zeros", Float32Array);
      if (
        words.length < Math.ceil((rows * cols) / per) || scales.length < rows * groups ||
        zeros.length < rows * groups
      ) {
        throw new Error(
          `native quantized decode (affine): buffers too short for [${shape}] with ${spec.bits}-bit codes and blockSize ${blockSize}; quantize the weight again with this blockSize`,
        );
      }
      // GPTQ act-order maps each input column to its group (g_idx); C indexes scales with it unchecked.
      const gidx = arrays.groupIndex ? need("groupIndex", Int32Array) : new Int32Array(0);
      if (arrays.groupIndex) {
        if (gidx.length !== cols) {
          throw new Error(
            `native quantized decode (affine): groupIndex has ${gidx.length} entries for ${cols} columns; quantize the weight again`,
          );
        }
        for (let j = 0; j < cols; j++) {
          if (!(gidx[j] >= 0 && gidx[j] < groups)) {
            throw new Error(
              `native quantized decode (affine): groupIndex[${j}] = ${
                gidx[j]
              } is outside [0, ${groups}); quantize the weight again`,
            );
          }
        }
      }
      const hasIndex = arrays.groupIndex ? 1 : 0;
      this.#decode = (_start, _n, row, count, out) =>
        kernels.peft_decode_affine(
          words,
          spec.bits,
          scales,
          zeros,
          gidx,
          hasIndex,
          cols,
          blockSize,
          row,
          count,
          out,
        );
    } else {
      const words = need("packed", Int32Array);
      const halves = new Uint16Array(words.buffer, words.byteOffset, 2 * words.length);
      const dtype = STORED_DTYPE_CODE[spec.format === "fp16" ? "F16" : "BF16"];
      this.#decode = (start, n, _row, _count, out) =>
        kernels.peft_decode(halves.subarray(start, start + n), dtype, n, out);
    }
  }

  /** Write rows [row, row + count) as float32 into out[0 .. count · in). */
  decodeRowsInto(row: number, count: number, out: Float32Array): void {
    if (!this.#arrays) throw new Error("decode of a disposed quantized weight; quantize the weight again");
    const cols = this.shape[1];
    if (!(row >= 0 && count >= 0 && row + count <= this.shape[0]) || out.length < count * cols) {
      throw new Error(
        `quantized decode: rows [${row}, ${row + count}) or output of ${out.length} do not fit`,
      );
    }
    if (count > 0) this.#decode(row * cols, count * cols, row, count, out);
  }

  /** Drop the buffers (later decodes throw). */
  release(): void {
    this.#arrays = null;
  }
}

/** Whether quantized layers of `scheme` decode in C now: it declares a decoder, native is active, kernels built. */
export function nativeDecodeActive(scheme: string): boolean {
  return schemeModule(scheme).nativeDecode !== null && storedKernelsActive() && openNativeKernels() !== null;
}

/**
 * The native form of a freshly quantized weight when {@link nativeDecodeActive}: its packed
 * tensors are read out of the heap into JS buffers and freed (so `tensors` is empty), and a
 * {@link PackedRowDecoder} decodes them; `dequantize()` decodes through it too. Null, leaving `w`
 * as it is, otherwise. `w` must not be used afterwards when a native form is returned.
 */
export function nativeQuantizedWeight(
  w: QuantizedWeight,
): { weight: QuantizedWeight; decoder: PackedRowDecoder } | null {
  const spec = schemeModule(w.scheme).nativeDecode;
  if (spec === null || !nativeDecodeActive(w.scheme)) return null;
  const arrays: Record<string, Int32Array | Float32Array> = {};
  // dataSync copies the values out of the wasm heap (a fresh typed array per tensor).
  for (const [name, t] of Object.entries(w.tensors)) arrays[name] = t.dataSync() as Int32Array | Float32Array;
  const decoder = new PackedRowDecoder(spec, w.shape, w.config.blockSize, arrays, openNativeKernels()!);
  w.dispose();
  const [rows, cols] = w.shape;
  const weight: QuantizedWeight = {
    scheme: w.scheme,
    config: w.config,
    shape: [rows, cols],
    storedBytes: w.storedBytes,
    bitsPerParam: w.bitsPerParam,
    tensors: {},
    relativeError: w.relativeError,
    quantizeMs: w.quantizeMs,
    calibrationRows: w.calibrationRows,
    forwardStats: w.forwardStats,
    dequantize: () => tf.tensor2d(decodeAll(decoder), [rows, cols]),
    matmul: () => null,
    dispose: () => decoder.release(),
  };
  return { weight, decoder };
}
