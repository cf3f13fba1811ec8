/**
 * Tokenizer coverage of a dataset split, measured where a task tokenizes its texts: how many of the
 * tokens are the tokenizer's unknown id or byte-fallback tokens, how many tokens a word and a
 * character take (fertility, Rust et al. 2021, "How Good is Your Tokenizer?"), and how many texts
 * the task's `--max-length` cut.
 *
 * Token kinds ({@link tokenKinds}):
 * - unknown: the tokenizer's unknown id (llama2.c: id 0 `<unk>`; Hugging Face: the model's
 *   `unk_token`; byte-level BPE has none);
 * - byte fallback: a token holding a single byte instead of text: SentencePiece/llama2.c byte
 *   tokens `<0xNN>`, and, for byte-level BPE (GPT-2, Llama 3, Qwen, the embedded model), a token
 *   that holds part of a UTF-8 character, i.e. one that decodes alone to U+FFFD (the vocabulary had
 *   no piece for the whole character). A text made of such tokens costs one token per byte.
 * Specials added by the task (BOS/EOS) are not counted; words are whitespace-separated pieces,
 * characters are Unicode code points.
 * @module
 */
import { HfTokenizer } from "../../models/tokenizers/hf.ts";
import { Llama2cTokenizer } from "../../models/tokenizers/llama2c.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";

/** Coverage of one split (counts and their ratios). */
export interface SplitCoverage {
  texts: number;
  /** Tokens of the whole texts, before truncation, without BOS/EOS. */
  tokens: number;
  words: number;
  chars: number;
  unknownTokens: number;
  byteFallbackTokens: number;
  /** unknownTokens / tokens. */
  unknownShare: number;
  /** byteFallbackTokens / tokens. */
  byteFallbackShare: number;
  /** tokens / words (fertility). */
  tokensPerWord: number;
  /** tokens / characters. */
  tokensPerChar: number;
  /** Texts longer than the task's `maxLength` ids (BOS included), and their share; null when the task does not truncate. */
  truncated: number | null;
  truncatedShare: number | null;
  /** The task's `--max-length` (null: not truncated, e.g. LM rows and rolling windows). */
  maxLength: number | null;
}

/** Coverage per split name (`train`, `dev`, `test`; retrieval: `train queries`, `test queries`, `documents`). */
export type TokenizerCoverage = Record<string, SplitCoverage>;

/** What a token id is, for coverage. */
export type TokenKind = "unknown" | "byte" | "text";

/** A SentencePiece / llama2.c byte token's name. */
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/** The tokenizer's unknown id, when it has one the interface can tell. */
function unknownIdOf(tokenizer: Tokenizer): number | null {
  if (tokenizer instanceof Llama2cTokenizer) return 0; // the llama2.c format fixes <unk> at id 0
  if (tokenizer instanceof HfTokenizer) {
    // @huggingface/tokenizers keeps the model's unk_token_id on its (untyped) model object.
    const id = (tokenizer.inner as unknown as { model?: { unk_token_id?: unknown } }).model?.unk_token_id;
    return typeof id === "number" ? id : null;
  }
  return null;
}

/** The vocabulary piece of an id where the tokenizer exposes it (byte tokens are named `<0xNN>`). */
function pieceOf(tokenizer: Tokenizer, id: number): string | undefined {
  if (tokenizer instanceof Llama2cTokenizer) return new TextDecoder().decode(tokenizer.pieces[id]);
  if (tokenizer instanceof HfTokenizer) return tokenizer.inner.id_to_token(id) ?? undefined;
  return undefined;
}

/** A memoised classifier of token ids for one tokenizer (see the module doc). */
export function tokenKinds(tokenizer: Tokenizer): (id: number) => TokenKind {
  const unk = unknownIdOf(tokenizer);
  const cache = new Map<number, TokenKind>();
  return (id) => {
    let kind = cache.get(id);
    if (kind === undefined) {
      const piece = pieceOf(tokenizer, id);
      kind = id === unk
        ? "unknown"
        : (piece !== undefined && BYTE_PIECE.test(piece)) || tokenizer.decode([id]).includes("\uFFFD")
        ? "byte"
        : "text";
      cache.set(id, kind);
    }
    return kind;
  };
}

/** Accumulates the coverage of one split's texts. */
export class CoverageTally {
  #texts = 0;
  #tokens = 0;
  #words = 0;
  #chars = 0;
  #unknown = 0;
  #byte = 0;
  #truncated = 0;
  readonly #kind: (id: number) => TokenKind;
  readonly #maxLength: number | null;
  readonly #specials: Set<number>;

  /** `maxLength`: the task's cut in ids, BOS included (null when it does not truncate). */
  constructor(tokenizer: Tokenizer, maxLength: number | null, kinds = tokenKinds(tokenizer)) {
    this.#kind = kinds;
    this.#maxLength = maxLength;
    this.#specials = new Set([tokenizer.bosId, tokenizer.eosId, tokenizer.padId].filter((x) => x !== null));
  }

  /**
   * Count one text and the ids the task encoded it to, before truncation; `withBos` says whether the
   * task prepends BOS (the cut counts it).
   */
  add(text: string, ids: readonly number[], withBos = false): void {
    this.#texts++;
    let n = 0;
    for (const id of ids) {
      if (this.#specials.has(id)) continue;
      n++;
      const k = this.#kind(id);
      if (k === "unknown") this.#unknown++;
      else if (k === "byte") this.#byte++;
    }
    this.#tokens += n;
    this.#words += text.split(/\s+/).filter((w) => w.length > 0).length;
    for (const _ of text) this.#chars++;
    if (this.#maxLength !== null && ids.length + (withBos ? 1 : 0) > this.#maxLength) this.#truncated++;
  }

  /** The split's coverage so far. */
  result(): SplitCoverage {
    const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
    return {
      texts: this.#texts,
      tokens: this.#tokens,
      words: this.#words,
      chars: this.#chars,
      unknownTokens: this.#unknown,
      byteFallbackTokens: this.#byte,
      unknownShare: ratio(this.#unknown, this.#tokens),
      byteFallbackShare: ratio(this.#byte, this.#tokens),
      tokensPerWord: ratio(this.#tokens, this.#words),
      tokensPerChar: ratio(this.#tokens, this.#chars),
      truncated: this.#maxLength === null ? null : this.#truncated,
      truncatedShare: this.#maxLength === null ? null : ratio(this.#truncated, this.#texts),
      maxLength: this.#maxLength,
    };
  }
}

/** Coverage of several named splits sharing one token classifier. */
export class CoverageBySplit {
  readonly #tokenizer: Tokenizer;
  readonly #kinds: (id: number) => TokenKind;
  readonly #tallies = new Map<string, CoverageTally>();

  /** Tallies for `tokenizer`, created on first use. */
  constructor(tokenizer: Tokenizer) {
    this.#tokenizer = tokenizer;
    this.#kinds = tokenKinds(tokenizer);
  }

  /** The tally of a split (created with the split's `maxLength` on first use). */
  split(name: string, maxLength: number | null): CoverageTally {
    let t = this.#tallies.get(name);
    if (!t) this.#tallies.set(name, t = new CoverageTally(this.#tokenizer, maxLength, this.#kinds));
    return t;
  }

  /** Start a split again (a split the task tokenizes anew on each evaluation). */
  reset(name: string, maxLength: number | null): CoverageTally {
    this.#tallies.delete(name);
    return this.split(name, maxLength);
  }

  /** Every split's coverage. */
  result(): TokenizerCoverage {
    return Object.fromEntries([...this.#tallies].map(([k, t]) => [k, t.result()]));
  }
}
