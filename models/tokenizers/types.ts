/**
 * The tokenizer interface shared by every tokenizer in peft-bench (llama2.c `.bin`, Hugging Face
 * `tokenizer.json`, and the BPE tokenizers trained by `bpe_train.ts`).
 * @module
 */

/** Options for {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend the BOS id (ignored when the tokenizer has none). */
  bos?: boolean;
  /** Append the EOS id (ignored when the tokenizer has none). */
  eos?: boolean;
}

/** Text <-> token ids. */
export interface Tokenizer {
  /** Number of ids (embedding rows needed), including special tokens. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, or null when the tokenizer has none. */
  readonly bosId: number | null;
  /** End-of-sequence id, or null when the tokenizer has none. */
  readonly eosId: number | null;
  /** Padding id, or null when the tokenizer has none. */
  readonly padId: number | null;
  /** Encode text to ids; BOS/EOS only when asked for. */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Decode ids to text; special tokens (BOS/EOS/PAD) decode to nothing. */
  decode(ids: number[]): string;
}
