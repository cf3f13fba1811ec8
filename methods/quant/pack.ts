/**
 * Packing of small unsigned fields (2, 3, 4, 8 or 16 bits) into int32 words, and unpacking both in
 * plain TypeScript and with tfjs ops.
 *
 * Layout: field i lives in word floor(i / p) at bit offset `bits · (i mod p)`, p = floor(32 / bits)
 * (little-endian within the word: the first field is the low nibble / byte / half). So 4-bit codes
 * are 8 per int32 (two per byte), 8-bit codes 4 per int32, 16-bit patterns 2 per int32, 2-bit codes
 * 16 per int32 and 3-bit codes 10 per int32 (the top 2 bits unused, as hqq's `pack_3bit_32`). The
 * last word is zero-padded. (bitsandbytes puts the first of two 4-bit codes in the high nibble of a
 * byte; only the order within a word differs.)
 *
 * Why bitwiseAnd and not floorDiv/mod: on tfjs-backend-wasm 4.22 int32 FloorDiv goes through
 * float32 and is wrong above 2^24 (floorDiv(0x7fffffff, 2^28) gives 8). BitwiseAnd is an integer
 * kernel on cpu and wasm, and `word & (mask << bits·k)` equals `field · 2^(bits·k)`, a number with at
 * most 16 significant bits, so casting it to float32 and multiplying by 2^(-bits·k) is exact.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Field widths we pack. */
export type FieldBits = 2 | 3 | 4 | 8 | 16;

/** Fields per int32 word. */
export function fieldsPerWord(bits: FieldBits): number {
  return Math.floor(32 / bits);
}

/** Pack unsigned fields (each < 2^bits) into int32 words; length ceil(n · bits / 32). */
export function packFields(fields: ArrayLike<number>, bits: FieldBits): Int32Array {
  const per = fieldsPerWord(bits);
  const limit = 2 ** bits;
  const out = new Int32Array(Math.ceil(fields.length / per));
  for (let i = 0; i < fields.length; i++) {
    const v = fields[i];
    if (!(v >= 0 && v < limit && Number.isInteger(v))) {
      throw new Error(`packFields: field ${i} = ${v} does not fit in ${bits} unsigned bits`);
    }
    out[(i / per) | 0] |= v << (bits * (i % per));
  }
  return out;
}

/** Unpack the first n fields (pure TS reference of {@link unpackFieldsTf}). */
export function unpackFields(words: Int32Array, bits: FieldBits, n: number): Uint16Array {
  const per = fieldsPerWord(bits);
  const mask = 2 ** bits - 1;
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (words[(i / per) | 0] >>> (bits * (i % per))) & mask;
  return out;
}

/**
 * tfjs unpacking: int32 words [w] -> float32 field values [w · floor(32/bits)] (integers in
 * [0, 2^bits)), using only Tile, BitwiseAnd, Cast, Mul, Add and Less (all registered in
 * tfjs-backend-wasm and -cpu). The top field of a word comes out as a signed value (the word's sign bit
 * belongs to it when bits divides 32), so it is corrected by adding 2^bits when negative: `v + 2^bits · (v < 0)`.
 * Call inside `tf.tidy`.
 */
export function unpackFieldsTf(words: tf.Tensor1D, bits: FieldBits): tf.Tensor1D {
  const per = fieldsPerWord(bits);
  const n = words.shape[0];
  const masks = new Int32Array(per);
  const scales = new Float32Array(per);
  for (let k = 0; k < per; k++) {
    masks[k] = ((2 ** bits - 1) << (bits * k)) | 0;
    scales[k] = 2 ** (-bits * k);
  }
  // BitwiseAnd does not broadcast, so tile both operands to [n, per].
  const x = tf.tile(tf.reshape(words, [n, 1]), [1, per]);
  const m = tf.tile(tf.tensor2d(masks, [1, per], "int32"), [n, 1]);
  const shifted = tf.mul(tf.cast(tf.bitwiseAnd(x, m), "float32"), tf.tensor2d(scales, [1, per]));
  const wrapped = tf.add(shifted, tf.mul(tf.cast(tf.less(shifted, 0), "float32"), 2 ** bits));
  return tf.reshape(wrapped, [n * per]);
}
