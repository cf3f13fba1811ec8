/**
 * A safetensors reader and writer (https://github.com/huggingface/safetensors), plus the float16/bfloat16
 * conversions it needs.
 *
 * Layout: an 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the data buffer;
 * offsets are relative to the start of the buffer. F32/F16/BF16 tensors are decoded to Float32Array;
 * I32 and U8 are kept raw (Int32Array / Uint8Array) for packed quantized weights.
 * @module
 */
import { readFileOrExplain, writeFileAtomic } from "./util/io.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Round a float32 value to the nearest IEEE binary16 bit pattern (ties to even).
 * Handles signed zero, subnormals (down to 2^-24), overflow to ±inf (above 65504 + half an ulp),
 * inf and NaN (kept a quiet NaN with the top mantissa bits and sign).
 */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m * 2^(e-38) with the 24-bit significand m; one half ulp is 2^-24,
    // so the half mantissa is m >> (14 - e), rounded to even.
    const shift = 14 - e;
    if (shift > 24) return sign; // below 2^-25: rounds to zero
    const m = mant | 0x800000;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half; // a carry into bit 10 is exactly the smallest normal
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry may reach inf, which is correct
  return sign | half;
}

/** Decode an IEEE binary16 bit pattern to a number (exact: every half value is a float32 value). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Round a float32 value to the nearest bfloat16 bit pattern (the top 16 bits of float32, ties to even).
 * NaN stays a quiet NaN; overflow past the largest bfloat16 rounds to ±inf as IEEE requires.
 */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even.
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode a bfloat16 bit pattern to a number (exact). */
export function bf16BitsToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** Decode float16 bit patterns to a Float32Array. */
export function f16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}

/** Decode bfloat16 bit patterns to a Float32Array. */
export function bf16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o32[i] = bits[i] << 16;
  return out;
}

/** Tensor dtypes this module reads and writes. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "U8";

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  U8: 1,
};

/** Decoded tensor data: float dtypes become Float32Array, I32 stays Int32Array, U8 stays Uint8Array. */
export type TensorData = Float32Array | Int32Array | Uint8Array;

/** One tensor read from a safetensors file. `dtype` is the stored dtype (F16 data is still a Float32Array). */
export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** A tensor to write; `dtype` defaults to F32 / I32 / U8 from the array type. */
export interface SafeTensorInput {
  data: TensorData;
  shape: number[];
  dtype?: SafetensorsDtype;
}

/** The contents of a safetensors file: tensors by name (file order) and the string metadata. */
export interface Safetensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === "string" && Object.hasOwn(DTYPE_SIZE, d);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Copy `n` little-endian elements out of `bytes` (possibly unaligned) into a fresh typed array. */
function decode(dtype: SafetensorsDtype, bytes: Uint8Array, n: number): TensorData {
  if (dtype === "U8") return bytes.slice();
  const copy = bytes.slice(); // fresh, aligned buffer
  const view = new DataView(copy.buffer);
  if (dtype === "F32") {
    if (LITTLE_ENDIAN_HOST) return new Float32Array(copy.buffer, 0, n);
    return Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
  }
  if (dtype === "I32") {
    if (LITTLE_ENDIAN_HOST) return new Int32Array(copy.buffer, 0, n);
    return Int32Array.from({ length: n }, (_, i) => view.getInt32(4 * i, true));
  }
  const bits = LITTLE_ENDIAN_HOST
    ? new Uint16Array(copy.buffer, 0, n)
    : Uint16Array.from({ length: n }, (_, i) => view.getUint16(2 * i, true));
  return dtype === "F16" ? f16ArrayToF32(bits) : bf16ArrayToF32(bits);
}

/** Largest JSON header accepted: the reference implementation's limit (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's entry in a safetensors header; offsets are relative to the data buffer. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A checked safetensors header: tensor entries (file order), metadata, and where the data starts. */
export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (8 + header length). */
  dataStart: number;
}

type Fail = (why: string) => never;

function failer(source: string): Fail {
  return (why: string): never => {
    throw new Error(`${source}: ${why}`);
  };
}

/** The header length from the file's first 8 bytes, checked against the file size. */
function headerLength(first: Uint8Array, fileBytes: number, fail: Fail): number {
  if (fileBytes < 8 || first.length < 8) {
    fail(`truncated safetensors file (${fileBytes} bytes, need at least 8); re-download or re-save it`);
  }
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileBytes - 8)) {
    fail(
      `header length ${n} runs past the end of the file (${fileBytes} bytes); the file is truncated or not safetensors`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(
      `header length ${n} is above the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt or not safetensors`,
    );
  }
  return Number(n);
}

function parseMetadata(raw: unknown, fail: Fail): Record<string, string> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail(`__metadata__ must be an object of strings`);
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "string") fail(`__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
    metadata[k] = v as string;
  }
  return metadata;
}

/** Check one tensor entry: dtype, shape, offsets that match shape x dtype and lie in the data buffer. */
function parseEntry(name: string, raw: unknown, dataBytes: number, fail: Fail): SafetensorsEntry {
  const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (t === null || typeof t !== "object" || Array.isArray(t)) {
    fail(`tensor "${name}" has no {dtype, shape, data_offsets} entry`);
  }
  if (!isDtype(t.dtype)) {
    fail(
      `tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)} (supported: ${
        Object.keys(DTYPE_SIZE).join(", ")
      })`,
    );
  }
  const dtype = t.dtype as SafetensorsDtype;
  const shape = t.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(
      `tensor "${name}" has invalid shape ${JSON.stringify(shape)} (need an array of non-negative integers)`,
    );
  }
  const off = t.data_offsets;
  if (
    !Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    off[0] > off[1]
  ) {
    fail(
      `tensor "${name}" has invalid data_offsets ${
        JSON.stringify(off)
      } (need [begin, end] with begin <= end)`,
    );
  }
  const [begin, end] = off as number[];
  const want = numel(shape as number[]) * DTYPE_SIZE[dtype];
  if (end - begin !== want) {
    fail(
      `tensor "${name}" data_offsets span ${end - begin} bytes but shape ${
        JSON.stringify(shape)
      } x ${dtype} needs ${want}`,
    );
  }
  if (end > dataBytes) {
    fail(
      `truncated: tensor "${name}" data ends at byte ${end} of a ${dataBytes}-byte data buffer; re-download or re-save it`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/**
 * Check that the tensors tile the data buffer as the format requires: no overlap, no bytes that
 * belong to no tensor, nothing after the last one. A header whose offsets lie fails here.
 */
function checkLayout(entries: SafetensorsEntry[], dataBytes: number, fail: Fail): void {
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev: SafetensorsEntry | null = null;
  for (const cur of byOffset) {
    if (prev && cur.begin < prev.end) {
      fail(
        `tensors "${prev.name}" [${prev.begin}, ${prev.end}) and "${cur.name}" [${cur.begin}, ${cur.end}) overlap; the file is corrupt`,
      );
    }
    if (cur.begin > covered) {
      fail(
        `data bytes [${covered}, ${cur.begin}) before tensor "${cur.name}" belong to no tensor; the header's data_offsets are wrong (re-save the file)`,
      );
    }
    covered = cur.end;
    prev = cur;
  }
  if (covered !== dataBytes) {
    fail(
      `${
        dataBytes - covered
      } data bytes after the last tensor belong to no tensor; the file is corrupt or its header is wrong (re-save the file)`,
    );
  }
}

/**
 * Parse and check a safetensors JSON header (the bytes after the length prefix) for a data buffer
 * of `dataBytes` bytes. Errors start with `source`.
 */
export function parseSafetensorsHeader(
  json: Uint8Array,
  dataBytes: number,
  source = "<memory>",
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const fail = failer(source);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (err) {
    fail(`invalid JSON header (${(err as Error).message}); the file is corrupt or not safetensors`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("the JSON header is not an object; the file is corrupt or not safetensors");
  }
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") metadata = parseMetadata(raw, fail);
    else entries.push(parseEntry(name, raw, dataBytes, fail));
  }
  checkLayout(entries, dataBytes, fail);
  return { entries, metadata };
}

/**
 * Parse a safetensors file held in memory. `source` names the file in error messages.
 * Throws a one-line error for a truncated file, a header length past the end (or above
 * {@link MAX_HEADER_BYTES}), an invalid JSON header, an unknown dtype, offsets whose size disagrees
 * with shape x dtype size, offsets past the data, overlapping tensors, or data bytes no tensor owns.
 */
export function readSafetensors(bytes: Uint8Array, source = "<memory>"): Safetensors {
  const headerLen = headerLength(bytes, bytes.length, failer(source));
  const buffer = bytes.subarray(8 + headerLen);
  const { entries, metadata } = parseSafetensorsHeader(
    bytes.subarray(8, 8 + headerLen),
    buffer.length,
    source,
  );
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const data = decode(e.dtype, buffer.subarray(e.begin, e.end), numel(e.shape));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Read up to `n` bytes from the current position (fewer only at the end of the file). */
async function readUpTo(file: Deno.FsFile, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await file.read(out.subarray(got));
    if (k === null) break;
    got += k;
  }
  return out.subarray(0, got);
}

/**
 * Read and check only the header of a safetensors file (no tensor data): the same checks as
 * {@link readSafetensors}, against the file's size. Errors name the path.
 */
export async function readSafetensorsHeaderFile(path: string): Promise<SafetensorsHeader> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`safetensors file not found: ${path} (check the path)`);
    }
    throw err;
  }
  try {
    const size = (await file.stat()).size;
    const headerLen = headerLength(await readUpTo(file, 8), size, failer(path));
    const json = await readUpTo(file, headerLen);
    if (json.length !== headerLen) failer(path)(`the file changed while being read; try again`);
    const dataStart = 8 + headerLen;
    return { ...parseSafetensorsHeader(json, size - dataStart, path), dataStart };
  } finally {
    file.close();
  }
}

function inferDtype(data: TensorData): SafetensorsDtype {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Int32Array) return "I32";
  return "U8";
}

/** Encode one tensor's data as little-endian bytes in `dtype`. */
function encode(name: string, t: SafeTensorInput, dtype: SafetensorsDtype): Uint8Array {
  const float = dtype === "F32" || dtype === "F16" || dtype === "BF16";
  const okType = float
    ? t.data instanceof Float32Array
    : dtype === "I32"
    ? t.data instanceof Int32Array
    : t.data instanceof Uint8Array;
  if (!okType) {
    const want = float ? "Float32Array" : dtype === "I32" ? "Int32Array" : "Uint8Array";
    throw new Error(
      `writeSafetensors: tensor "${name}" with dtype ${dtype} needs a ${want}, got ${t.data.constructor.name}`,
    );
  }
  const n = t.data.length;
  const out = new Uint8Array(n * DTYPE_SIZE[dtype]);
  const dv = new DataView(out.buffer);
  if (dtype === "U8") out.set(t.data as Uint8Array);
  else if (dtype === "F32") { for (let i = 0; i < n; i++) dv.setFloat32(4 * i, t.data[i], true); }
  else if (dtype === "I32") { for (let i = 0; i < n; i++) dv.setInt32(4 * i, t.data[i], true); }
  else {
    const conv = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < n; i++) dv.setUint16(2 * i, conv(t.data[i]), true);
  }
  return out;
}

/**
 * Serialise tensors to safetensors bytes. Like the reference implementation, tensors are laid out by
 * element size (largest first, so every tensor stays aligned to its element size) and then by name; the
 * JSON header is padded with spaces so the data starts on an 8-byte boundary.
 */
export function writeSafetensors(
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const prepared = list.map(([name, t]) => {
    if (name === "__metadata__") {
      throw new Error(`writeSafetensors: "__metadata__" is reserved; rename that tensor`);
    }
    const dtype = t.dtype ?? inferDtype(t.data);
    if (!isDtype(dtype)) throw new Error(`writeSafetensors: tensor "${name}" has unknown dtype ${dtype}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`writeSafetensors: tensor "${name}" has invalid shape ${JSON.stringify(t.shape)}`);
    }
    if (numel(t.shape) !== t.data.length) {
      throw new Error(
        `writeSafetensors: tensor "${name}" has ${t.data.length} values but shape ${
          JSON.stringify(t.shape)
        } needs ${numel(t.shape)}`,
      );
    }
    return { name, dtype, shape: [...t.shape], bytes: encode(name, t, dtype) };
  });
  prepared.sort((a, b) =>
    DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`writeSafetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const p of prepared) {
    header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [offset, offset + p.bytes.length] };
    offset += p.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const p of prepared) {
    out.set(p.bytes, pos);
    pos += p.bytes.length;
  }
  return out;
}

/**
 * Raw tensor data as stored: F32 as Float32Array, F16 and BF16 as Uint16Array bit patterns (not
 * widened), I32 as Int32Array, U8 as Uint8Array.
 */
export type RawTensorData = Float32Array | Uint16Array | Int32Array | Uint8Array;

/** One tensor read without widening (see {@link readSafetensorsRawFile}). */
export interface RawSafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: RawTensorData;
}

/** Wrap little-endian bytes (a fresh, aligned buffer) as the stored dtype's typed array. */
function rawView(dtype: SafetensorsDtype, bytes: Uint8Array): RawTensorData {
  const size = DTYPE_SIZE[dtype];
  if (!LITTLE_ENDIAN_HOST && size > 1) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < bytes.length; i += size) {
      if (size === 2) view.setUint16(i, view.getUint16(i, true));
      else view.setUint32(i, view.getUint32(i, true));
    }
  }
  const n = bytes.length / size;
  if (dtype === "F32") return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  if (dtype === "I32") return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  if (dtype === "U8") return bytes;
  return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
}

/**
 * Read every tensor of a safetensors file in its stored precision, one tensor at a time into its
 * own buffer (the file is never held whole, so the peak is the tensors' own bytes). `header` is the
 * file's checked header ({@link readSafetensorsHeaderFile}) when already read. Errors name the path.
 */
export async function readSafetensorsRawFile(
  path: string,
  header?: SafetensorsHeader,
): Promise<Map<string, RawSafeTensor>> {
  const h = header ?? await readSafetensorsHeaderFile(path);
  const file = await Deno.open(path, { read: true });
  try {
    const last = h.entries.reduce((m, e) => Math.max(m, e.end), 0);
    if ((await file.stat()).size < h.dataStart + last) {
      failer(path)(
        "the file is shorter than its header says (truncated or changed while reading); re-download it",
      );
    }
    const out = new Map<string, RawSafeTensor>();
    for (const e of [...h.entries].sort((a, b) => a.begin - b.begin)) {
      await file.seek(h.dataStart + e.begin, Deno.SeekMode.Start);
      const bytes = await readUpTo(file, e.end - e.begin);
      if (bytes.length !== e.end - e.begin) {
        failer(path)(`tensor "${e.name}" is truncated; re-download the file`);
      }
      out.set(e.name, { dtype: e.dtype, shape: e.shape, data: rawView(e.dtype, bytes) });
    }
    // File order, as readSafetensors gives.
    return new Map(h.entries.map((e) => [e.name, out.get(e.name)!]));
  } finally {
    file.close();
  }
}

/** Float32 values of a raw float tensor (F32 as is, F16/BF16 decoded exactly); other dtypes unchanged. */
export function widenRaw(t: RawSafeTensor): TensorData {
  if (t.dtype === "F16") return f16ArrayToF32(t.data as Uint16Array);
  if (t.dtype === "BF16") return bf16ArrayToF32(t.data as Uint16Array);
  return t.data as TensorData;
}

/** Read and parse a safetensors file; errors name the path. */
export async function readSafetensorsFile(path: string): Promise<Safetensors> {
  return readSafetensors(await readFileOrExplain(path, "safetensors file"), path);
}

/** Serialise tensors and write them to `path` atomically (temp file + rename). */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, writeSafetensors(tensors, metadata));
}
