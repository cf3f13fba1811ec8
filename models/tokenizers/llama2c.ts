/**
 * llama2.c tokenizer (`tokenizer.bin` / `tok512.bin`): loader, and the exact llama2.c encode and decode.
 *
 * File format: int32 max_token_length, then per token a float32 score, an int32 byte length and the
 * token's bytes (all little-endian). Ids 0 <unk>, 1 BOS, 2 EOS, 3..258 byte fallback <0x00>..<0xFF>.
 *
 * Encoding (llama2.c `encode`): optional BOS, a " " dummy-prefix token when the text is non-empty, then
 * one token per UTF-8 character (byte-fallback ids 3 + byte when the character is not in the vocab), then
 * repeatedly merge the adjacent pair whose concatenation is a vocab token with the highest score (the
 * leftmost such pair on ties), and finally an optional EOS.
 * @module
 */
import { readFileOrExplain } from "../util/io.ts";
import type { EncodeOptions, Tokenizer } from "./types.ts";

/** Scores at or below this never merge (llama2.c starts its best-score search at -1e10). */
const NO_SCORE = -1e10;

/** Bytes to a "binary" string (one char per byte) so vocab lookups compare raw bytes, as llama2.c does. */
function bin(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

interface Candidate {
  score: number;
  pos: number; // original start of the left token: keeps "leftmost first" among equal scores
  left: number;
  leftVer: number;
  rightVer: number;
  id: number;
}

function better(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.pos < b.pos);
}

/** Minimal binary max-heap on {@link better}. */
class Heap {
  #a: Candidate[] = [];
  get size(): number {
    return this.#a.length;
  }
  push(c: Candidate): void {
    const a = this.#a;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!better(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Candidate {
    const a = this.#a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && better(a[l], a[m])) m = l;
        if (r < a.length && better(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** A loaded llama2.c tokenizer. */
export class Llama2cTokenizer implements Tokenizer {
  /** Number of tokens in the file. */
  readonly vocabSize: number;
  /** llama2.c BOS id. */
  readonly bosId = 1;
  /** llama2.c EOS id. */
  readonly eosId = 2;
  /** llama2.c has no padding token. */
  readonly padId = null;
  /** The file's max_token_length field. */
  readonly maxTokenLength: number;
  /** Merge scores by id. */
  readonly scores: Float32Array;
  /** Token bytes by id. */
  readonly pieces: Uint8Array[];
  readonly #bin: string[];
  readonly #lookup = new Map<string, number>();

  /** Build from parsed fields; use {@link parseLlama2cTokenizer} to read a file. */
  constructor(maxTokenLength: number, scores: Float32Array, pieces: Uint8Array[]) {
    this.maxTokenLength = maxTokenLength;
    this.scores = scores;
    this.pieces = pieces;
    this.vocabSize = pieces.length;
    this.#bin = pieces.map(bin);
    // llama2.c looks tokens up by binary search; for duplicate strings keep the first id.
    this.#bin.forEach((s, id) => {
      if (!this.#lookup.has(s)) this.#lookup.set(s, id);
    });
  }

  /** Id of a token given as a string (UTF-8), or undefined when absent. */
  tokenToId(token: string): number | undefined {
    return this.#lookup.get(bin(new TextEncoder().encode(token)));
  }

  /** Encode text exactly as llama2.c does (see the module doc). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const bytes = new TextEncoder().encode(text);
    const tokens: number[] = [];
    if (bytes.length > 0) {
      const dummy = this.#lookup.get(" ");
      if (dummy === undefined) {
        throw new Error(`llama2.c tokenizer has no " " token; the file is not a llama2.c tokenizer`);
      }
      tokens.push(dummy);
    }
    // Group bytes into UTF-8 characters the way llama2.c does (at most 4 bytes per group).
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) start = i;
      const next = i + 1 < bytes.length ? bytes[i + 1] : 0;
      if ((next & 0xc0) === 0x80 && i + 1 - start < 4) continue;
      const id = this.#lookup.get(bin(bytes.subarray(start, i + 1)));
      if (id !== undefined) tokens.push(id);
      else for (let j = start; j <= i; j++) tokens.push(bytes[j] + 3);
      start = i + 1;
    }
    const merged = this.#merge(tokens);
    if (opts.bos) merged.unshift(this.bosId);
    if (opts.eos) merged.push(this.eosId);
    return merged;
  }

  /**
   * The llama2.c merge loop (repeatedly merge the best-scoring adjacent pair, leftmost on ties),
   * done with a heap and a linked list so long texts stay O(n log n) instead of O(n^2).
   */
  #merge(tokens: number[]): number[] {
    const n = tokens.length;
    const ids = Int32Array.from(tokens);
    const next = new Int32Array(n).map((_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = new Int32Array(n).map((_, i) => i - 1);
    const ver = new Int32Array(n); // bumped when a node changes or dies; stale heap entries are skipped
    const heap = new Heap();
    const consider = (left: number) => {
      const right = next[left];
      if (left < 0 || right < 0) return;
      const id = this.#lookup.get(this.#bin[ids[left]] + this.#bin[ids[right]]);
      if (id === undefined || !(this.scores[id] > NO_SCORE)) return;
      heap.push({ score: this.scores[id], pos: left, left, leftVer: ver[left], rightVer: ver[right], id });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const c = heap.pop();
      const right = next[c.left];
      if (ver[c.left] !== c.leftVer || right < 0 || ver[right] !== c.rightVer) continue;
      ids[c.left] = c.id;
      ver[c.left]++;
      ver[right] = -1; // dead
      next[c.left] = next[right];
      if (next[right] >= 0) prev[next[right]] = c.left;
      consider(prev[c.left]);
      consider(c.left);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push(ids[i]);
    return out;
  }

  /**
   * Decode ids to text like llama2.c's `decode`: byte tokens <0xNN> become raw bytes, the dummy-prefix
   * space of the first piece after BOS is dropped, and BOS/EOS produce nothing. Invalid UTF-8 becomes U+FFFD.
   */
  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let prev = -1;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`llama2.c decode: id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      const p = prev;
      prev = id;
      if (id === this.bosId || id === this.eosId) continue;
      let piece = this.pieces[id];
      if (p === this.bosId && piece[0] === 0x20) piece = piece.subarray(1);
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(this.#bin[id]);
      parts.push(m ? new Uint8Array([parseInt(m[1], 16)]) : piece);
    }
    const total = parts.reduce((s, p) => s + p.length, 0);
    const all = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return new TextDecoder().decode(all);
  }
}

/**
 * Parse a llama2.c tokenizer file. `source` names it in errors; `vocabSize`, when given (from the model
 * header), must match the number of tokens in the file.
 */
export function parseLlama2cTokenizer(
  bytes: Uint8Array,
  source = "<memory>",
  vocabSize?: number,
): Llama2cTokenizer {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) {
    throw new Error(
      `${source}: truncated llama2.c tokenizer (${bytes.length} bytes, no max_token_length header)`,
    );
  }
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) {
    throw new Error(
      `${source}: max_token_length ${maxTokenLength} is not plausible; this is not a llama2.c tokenizer file`,
    );
  }
  const scores: number[] = [];
  const pieces: Uint8Array[] = [];
  let o = 4;
  while (o < bytes.length) {
    if (o + 8 > bytes.length) {
      throw new Error(
        `${source}: truncated llama2.c tokenizer: token ${pieces.length} record cut off at byte ${o}`,
      );
    }
    const score = dv.getFloat32(o, true);
    const len = dv.getInt32(o + 4, true);
    if (len < 0 || len > maxTokenLength) {
      throw new Error(
        `${source}: token ${pieces.length} has length ${len} (max_token_length ${maxTokenLength}); the file is corrupt`,
      );
    }
    if (o + 8 + len > bytes.length) {
      throw new Error(
        `${source}: truncated llama2.c tokenizer: token ${pieces.length} bytes run past the end (byte ${o})`,
      );
    }
    scores.push(score);
    pieces.push(bytes.slice(o + 8, o + 8 + len));
    o += 8 + len;
    if (vocabSize !== undefined && pieces.length === vocabSize) break; // llama2.c reads exactly vocab_size
  }
  if (vocabSize !== undefined && pieces.length !== vocabSize) {
    throw new Error(
      `${source}: has ${pieces.length} tokens but the model expects vocab_size ${vocabSize}; wrong tokenizer file`,
    );
  }
  if (pieces.length < 259) {
    throw new Error(
      `${source}: only ${pieces.length} tokens; llama2.c tokenizers need <unk>, BOS, EOS and 256 byte tokens`,
    );
  }
  return new Llama2cTokenizer(maxTokenLength, Float32Array.from(scores), pieces);
}

/** Read and parse a llama2.c tokenizer file. */
export async function loadLlama2cTokenizer(path: string, vocabSize?: number): Promise<Llama2cTokenizer> {
  return parseLlama2cTokenizer(await readFileOrExplain(path, "llama2.c tokenizer"), path, vocabSize);
}
