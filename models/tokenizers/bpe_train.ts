/**
 * A deterministic byte-level BPE trainer (GPT-2 style) that writes a Hugging Face `tokenizer.json`.
 *
 * 1. Split the text with the GPT-2 pre-tokenization regex and count word frequencies.
 * 2. Map each word's UTF-8 bytes to printable characters with the GPT-2 byte-to-unicode table, so the
 *    256-byte alphabet covers any text and decoding is exact.
 * 3. Repeatedly merge the most frequent adjacent pair (ties: lexicographically smallest (left, right) by
 *    token string), until the vocabulary reaches the target size or no pair occurs `minFrequency` times.
 *    Pair counts are kept incrementally: a merge only revisits the words that contain the pair.
 *
 * Ids: the special tokens first (default `<|bos|>`, `<|eos|>`, `<|pad|>`), then the 256 byte tokens in
 * byte order, then one token per merge in merge order.
 * @module
 */

/**
 * GPT-2's pre-tokenization split, exactly as `@huggingface/tokenizers` applies it for a ByteLevel
 * pre-tokenizer (so training and encoding see the same words).
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte-to-unicode table: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to
 * themselves, the other 68 bytes to U+0100 onwards in byte order (so space 0x20 -> 'Ġ' U+0120).
 * Returns the character for each byte 0..255.
 */
export function bytesToUnicode(): string[] {
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return out;
}

/** Options for {@link trainBpe}. */
export interface BpeTrainOptions {
  /** Target vocabulary size, including special tokens and the 256 byte tokens. */
  vocabSize: number;
  /** Stop merging when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Special tokens, given the first ids (default `<|bos|>`, `<|eos|>`, `<|pad|>`). */
  specialTokens?: string[];
}

/** A trained byte-level BPE model: token strings by id, and merges (pairs of token strings) in rank order. */
export interface BpeModel {
  vocab: string[];
  merges: [string, string][];
  specialTokens: string[];
}

/** Default special tokens. */
export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ["<|bos|>", "<|eos|>", "<|pad|>"];

/** Max-heap entry: a pair and the count it had when pushed (stale entries are re-checked on pop). */
interface Entry {
  count: number;
  a: number;
  b: number;
}

const KEY = 2 ** 21; // pair key = a * KEY + b; exact in a double for ids < 2^21

/**
 * Train byte-level BPE on `text` (a string, or an iterable of documents, each split separately).
 * Deterministic: the same text and options always give the same model.
 */
export function trainBpe(text: string | Iterable<string>, opts: BpeTrainOptions): BpeModel {
  const specials = [...(opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  const minFrequency = opts.minFrequency ?? 2;
  const base = specials.length + 256;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < base || opts.vocabSize >= KEY) {
    throw new Error(
      `trainBpe: vocabSize ${opts.vocabSize} must be an integer in [${base}, ${KEY}) (specials + 256 bytes)`,
    );
  }
  if (new Set(specials).size !== specials.length) {
    throw new Error(`trainBpe: duplicate special tokens ${specials}`);
  }

  // 1. Word frequencies.
  const counts = new Map<string, number>();
  for (const doc of typeof text === "string" ? [text] : text) {
    for (const m of doc.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  }
  // Sorted so word order (and so everything downstream) is independent of Map insertion details.
  const wordList = [...counts.keys()].sort();
  const enc = new TextEncoder();
  const words: Int32Array[] = [];
  const lens = new Int32Array(wordList.length);
  const freq = new Float64Array(wordList.length);
  wordList.forEach((w, i) => {
    const bytes = enc.encode(w);
    words.push(Int32Array.from(bytes, (b) => specials.length + b));
    lens[i] = bytes.length;
    freq[i] = counts.get(w)!;
  });

  // 2. Vocabulary strings and initial pair counts.
  const byteChars = bytesToUnicode();
  const vocab: string[] = [...specials, ...byteChars];
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < lens[w]; i++) {
      const k = s[i] * KEY + s[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + freq[w]);
      const list = where.get(k);
      if (list) list.push(w);
      else where.set(k, [w]);
    }
  }

  // 3. Merge loop over a lazy max-heap (count desc, then left string asc, then right string asc).
  const before = (x: Entry, y: Entry): boolean => {
    if (x.count !== y.count) return x.count > y.count;
    const xa = vocab[x.a], ya = vocab[y.a];
    if (xa !== ya) return xa < ya;
    return vocab[x.b] < vocab[y.b];
  };
  const heap: Entry[] = [];
  const push = (e: Entry) => {
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = (): Entry => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  for (const [k, count] of pairCount) push({ count, a: Math.floor(k / KEY), b: k % KEY });

  const merges: [string, string][] = [];
  const seen = new Int32Array(words.length);
  let stamp = 0;
  while (vocab.length < opts.vocabSize && heap.length > 0) {
    const top = pop();
    const key = top.a * KEY + top.b;
    const current = pairCount.get(key) ?? 0;
    if (current !== top.count) {
      if (current > 0) push({ count: current, a: top.a, b: top.b });
      continue;
    }
    if (current < minFrequency || current <= 0) break;
    const { a, b } = top;
    const id = vocab.length;
    vocab.push(vocab[a] + vocab[b]);
    merges.push([vocab[a], vocab[b]]);
    const touched = new Set<number>();
    const list = where.get(key) ?? [];
    where.delete(key);
    stamp++;
    for (const w of list) {
      if (seen[w] === stamp) continue;
      seen[w] = stamp;
      const s = words[w];
      const n = lens[w];
      let found = false;
      for (let i = 0; i + 1 < n; i++) if (s[i] === a && s[i + 1] === b) found = true;
      if (!found) continue; // stale entry: an earlier merge already consumed this pair here
      const f = freq[w];
      for (let i = 0; i + 1 < n; i++) {
        const k = s[i] * KEY + s[i + 1];
        const c = pairCount.get(k)! - f;
        if (c === 0) pairCount.delete(k);
        else pairCount.set(k, c);
      }
      // Left-to-right, non-overlapping: "aaa" with (a, a) becomes [aa, a], as the encoder does.
      let j = 0;
      for (let i = 0; i < n;) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          s[j++] = id;
          i += 2;
        } else s[j++] = s[i++];
      }
      lens[w] = j;
      for (let i = 0; i + 1 < j; i++) {
        const k = s[i] * KEY + s[i + 1];
        pairCount.set(k, (pairCount.get(k) ?? 0) + f);
        if (s[i] === id || s[i + 1] === id) {
          touched.add(k);
          const l = where.get(k);
          if (l) l.push(w);
          else where.set(k, [w]);
        }
      }
    }
    // Only pairs containing the new token can have grown; every other count only fell (handled lazily).
    for (const k of touched) push({ count: pairCount.get(k)!, a: Math.floor(k / KEY), b: k % KEY });
  }
  return { vocab, merges, specialTokens: specials };
}

/**
 * Serialise a {@link BpeModel} as a Hugging Face `tokenizer.json` (BPE model with vocab and merges,
 * ByteLevel pre-tokenizer and decoder, the special tokens as added tokens).
 */
export function bpeTokenizerJson(model: BpeModel): string {
  const vocab: Record<string, number> = {};
  model.vocab.forEach((tok, id) => {
    if (Object.hasOwn(vocab, tok)) {
      throw new Error(`bpeTokenizerJson: token ${JSON.stringify(tok)} appears twice`);
    }
    vocab[tok] = id;
  });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges,
    },
  };
  return JSON.stringify(json);
}

/** Train on `text` and return the `tokenizer.json` text in one step. */
export function trainBpeTokenizerJson(text: string | Iterable<string>, opts: BpeTrainOptions): string {
  return bpeTokenizerJson(trainBpe(text, opts));
}
