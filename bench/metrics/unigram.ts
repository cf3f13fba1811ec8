/**
 * The unigram language model with add-one (Laplace) smoothing, the trivial baseline of an LM study:
 * P(t) = (c(t) + 1) / (N + V), with c(t) the count of token t in the training text, N the training
 * tokens and V the vocabulary size (every id the tokenizer can produce, so unseen tokens get mass,
 * over the same support as the model's softmax). Its NLL over the test tokens gives the same
 * measures as the LM task (bench/metrics/lm.ts: token, byte and word perplexity, bits per byte).
 * @module
 */

/** Token counts of a training text, and the NLL of other text under the smoothed unigram. */
export class UnigramModel {
  readonly vocabSize: number;
  readonly #counts = new Map<number, number>();
  #total = 0;

  /** An empty model over `vocabSize` ids. */
  constructor(vocabSize: number) {
    if (!(Number.isInteger(vocabSize) && vocabSize > 0)) {
      throw new Error(`unigram model: vocabulary size must be a positive integer, got ${vocabSize}`);
    }
    this.vocabSize = vocabSize;
  }

  /** Count training tokens. */
  fit(ids: Iterable<number>): void {
    for (const id of ids) {
      this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1);
      this.#total++;
    }
  }

  /** Training tokens counted (N). */
  get total(): number {
    return this.#total;
  }

  /** -ln P(id) = -ln((c + 1) / (N + V)). */
  nllOf(id: number): number {
    return -Math.log(((this.#counts.get(id) ?? 0) + 1) / (this.#total + this.vocabSize));
  }

  /** Summed NLL (nats) of a token sequence. */
  nll(ids: Iterable<number>): number {
    let s = 0;
    for (const id of ids) s += this.nllOf(id);
    return s;
  }
}
