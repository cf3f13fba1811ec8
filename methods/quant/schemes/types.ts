/**
 * The contract every quantization scheme implements, and the constants schemes share.
 *
 * A scheme is a module exporting one {@link QuantSchemeModule}: its name and one-line summary
 * (the `--quant` help and the README table are generated from / checked against these), the config
 * keys it accepts, whether it needs calibration inputs, the reference quantizer (weight -> codes),
 * the reference tile decoder (codes -> float32 rows), the packed tensor layout (which fixes the
 * stored bits per parameter, counting every scale, zero point and statistic), and the tfjs packer
 * and decoder. `methods/quant/schemes.ts` holds the list; nothing else names schemes.
 *
 * This file is a leaf at run time (it imports only types), so scheme modules and `config.ts` can both use it
 * without an import cycle.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { QuantScheme } from "../schemes.ts";

/** Default block (group) size, QLoRA's (Dettmers et al. 2023, section 3). */
export const DEFAULT_BLOCK_SIZE = 64;
/** Second-level block size of double quantization (QLoRA: 256). */
export const DQ_BLOCK_SIZE = 256;
/** LLM.int8()'s outlier threshold alpha = 6.0 (Dettmers et al. 2022, section 3.2). */
export const DEFAULT_OUTLIER_THRESHOLD = 6.0;
/** GPTQ's Hessian damping, a fraction of the mean diagonal (`percdamp=.01` in IST-DASLab/gptq). */
export const DEFAULT_GPTQ_DAMPING = 0.01;
/** Training items (a seeded sample) whose activations calibrate a scheme that needs them. */
export const DEFAULT_CALIBRATION_ITEMS = 32;

/** Config keys a scheme may accept besides `scheme` (see `config.ts` QUANT_OPTIONS for each). */
export type QuantOptionKey =
  | "blockSize"
  | "doubleQuant"
  | "outlierThreshold"
  | "actOrder"
  | "damping"
  | "calibrationItems";

/** A validated config with every field filled in (fields that do not apply hold their defaults). */
export interface ResolvedQuantConfig {
  /** Storage scheme. */
  scheme: QuantScheme;
  /** Elements per block / group (block and group schemes). */
  blockSize: number;
  /** Double quantization on (4-bit absmax schemes). */
  doubleQuant: boolean;
  /** Outlier-feature threshold on |x| (llm-int8). */
  outlierThreshold: number;
  /** GPTQ: quantize columns in order of decreasing Hessian diagonal. */
  actOrder: boolean;
  /** GPTQ: damping added to the Hessian diagonal, as a fraction of its mean. */
  damping: number;
  /** GPTQ: training items (a seeded sample) whose layer inputs calibrate it. */
  calibrationItems: number;
}

/** Double-quantized per-block scales: s_b ≈ fround(fround(dyn[codes[b]] · blockScales[g]) + mean). */
export interface DoubleQuantState {
  /** Index into the dynamic 8-bit map for each first-level block. */
  codes: Uint8Array;
  /** absmax of (s - mean) over each group of 256 first-level scales. */
  blockScales: Float32Array;
  /** Mean of the first-level scales (float32). */
  mean: number;
}

/** Unpacked quantization state, the common input of the reference decoder and the packer. */
export interface QuantCodes {
  /** The validated config. */
  config: ResolvedQuantConfig;
  /** [out, in]. */
  shape: [number, number];
  /** Per-element codes (meaning per scheme; see each scheme module). */
  codes: Float32Array | Uint16Array | Uint8Array;
  /** Decode-time scale per row, block or group (per scheme). */
  scales: Float32Array;
  /** Double quantization state (4-bit absmax schemes with doubleQuant), else null. */
  doubleQuant: DoubleQuantState | null;
  /** Outlier input-column indices, ascending (empty for every current scheme; kept for callers). */
  outlierColumns: Int32Array;
  /** Outlier columns' fp32 values (empty for every current scheme). */
  outlierValues: Float32Array;
  /** Affine schemes (HQQ, GPTQ): zero point per group, in code units (empty otherwise). */
  zeros: Float32Array;
  /** GPTQ with act-order: group of each input column (`g_idx`), empty otherwise. */
  groupIndex: Int32Array;
}

/** What a calibration-based scheme needs: the layer's input rows X [rows, in] (row-major). */
export interface Calibration {
  /** Input activations, row-major [rows, in]. */
  inputs: Float32Array;
  /** Number of rows (tokens) in `inputs`. */
  rows: number;
}

/** One stored tensor of the packed layout. */
export interface PackedTensorSpec {
  /** Name in {@link QuantizedWeight}.tensors. */
  name: string;
  /** tfjs dtype (both are 4 bytes an element). */
  dtype: "int32" | "float32";
  /** Elements. */
  length: number;
}

/** The tfjs tensors of a packed weight and a decoder rebuilding float32 values from them. */
export interface PackedWeight {
  /** Stored tensors by name (exactly the layout's names and lengths). */
  tensors: Record<string, tf.Tensor>;
  /** A fresh float32 tensor of out·in values (any shape; reshaped by the caller). Call in tidy. */
  decode: () => tf.Tensor;
}

/** Statistics a scheme's own forward keeps (LLM.int8(): outlier features seen). */
export interface ForwardStats {
  /** Forward calls seen. */
  calls: number;
  /** Sum over calls of the number of outlier input columns. */
  outlierColumns: number;
  /** Sum over calls of the number of input columns. */
  columns: number;
  /** Outlier columns of the last call (ascending). */
  lastOutliers: number[];
}

/**
 * How the native backend's C kernels (`models/native/kernels.c`) decode a scheme's packed tensors
 * into the float32 tile that feeds `cblas_sgemm`, reading the very buffers `pack` builds (the
 * `pack.ts` bit layout). Tables come from here (TypeScript), never from C. Each kind names the
 * layout tensors it reads:
 *
 * - `absmax4`: `packed` (4-bit fields) and either `scales` (fp32 per block of `blockSize` elements
 *   of the flattened weight) or, with double quantization, `scaleCodes` (8-bit fields),
 *   `scaleBlockScales` (fp32 per group of `dqBlockSize` blocks) and `scaleMean`;
 *   w_i = table[k_i] · s_b, with s_b = fround(fround(dqTable[c_b] · S_g) + mean) under double quant.
 * - `rowwise-int8`: `packed` (8-bit fields) and `scales` (fp32 per output row); w = (c - 128) · s_row.
 * - `half16`: `packed` (16-bit fields), the fp16 or bf16 bit pattern of each element.
 * - `affine` (HQQ, GPTQ): `packed` (`bits`-bit fields, row-major), `scales` and `zeros` (fp32 per
 *   (row, group) of `blockSize` input columns) and, with GPTQ's act-order, `groupIndex` (the group
 *   of each input column); w = fround(c - z) · s.
 */
export type NativeDecode =
  | {
    readonly kind: "absmax4";
    /** The 16-entry code table indexed by nibble (NF4_CODE, FP4_CODE, INT4_CODE). */
    readonly table: Float32Array;
    /** The 256-entry map of double-quantized block constants (DYNAMIC_CODE_8BIT). */
    readonly dqTable: Float32Array;
    /** First-level blocks per double-quantization group (DQ_BLOCK_SIZE). */
    readonly dqBlockSize: number;
  }
  | { readonly kind: "rowwise-int8" }
  | { readonly kind: "half16"; readonly format: "fp16" | "bf16" }
  | {
    readonly kind: "affine";
    /** Bits per code (2, 3 or 4; 16, 10 or 8 fields per int32 word). */
    readonly bits: 2 | 3 | 4;
  };

/** A scheme: data plus its quantizer, decoders and packed layout. */
export interface QuantSchemeModule<N extends string = string> {
  /** The `--quant` name. */
  readonly name: N;
  /** One line for `--quant` help and the README table (what it stores, whose method it is). */
  readonly summary: string;
  /** Config keys it accepts besides `scheme`. */
  readonly options: readonly QuantOptionKey[];
  /** Its own defaults where they differ from the global ones (GPTQ's group size 128). */
  readonly defaults?: Partial<Pick<ResolvedQuantConfig, "blockSize">>;
  /** Needs the layer's input activations to quantize (GPTQ). */
  readonly needsCalibration: boolean;
  /** Weight -> codes. `calibration` is non-null exactly when `needsCalibration`. */
  quantize(
    weight: Float32Array,
    shape: [number, number],
    cfg: ResolvedQuantConfig,
    calibration: Calibration | null,
  ): QuantCodes;
  /** Reference decoder of the rows [row0, row1): row-major float32 [(row1 - row0), in]. */
  dequantizeRows(q: QuantCodes, row0: number, row1: number): Float32Array;
  /** The stored tensors for a weight of this shape (their 4-byte elements are the stored bytes). */
  layout(shape: [number, number], cfg: ResolvedQuantConfig): PackedTensorSpec[];
  /** Build the stored tensors from codes, and the decoder that equals `dequantizeRows` bit for bit. */
  pack(q: QuantCodes): PackedWeight;
  /**
   * The C decoder of its packed tensors on the native backend (equal to `dequantizeRows` bit for
   * bit), or null where there is none: those schemes (LLM.int8() with its own product, none)
   * decode with tfjs ops on every backend. Required, so that every scheme states which path it takes.
   */
  readonly nativeDecode: NativeDecode | null;
  /**
   * Optional own forward y = x W^T (LLM.int8(): mixed-precision decomposition on the input).
   * `dequantize` gives W as the packed decoder does; `stats` is updated in place.
   */
  forward?(
    x: tf.Tensor2D,
    packed: PackedWeight,
    q: { shape: [number, number]; config: ResolvedQuantConfig },
    stats: ForwardStats,
  ): tf.Tensor2D;
}
