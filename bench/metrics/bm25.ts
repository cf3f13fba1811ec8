/**
 * Okapi BM25 (Robertson et al., "Okapi at TREC-3", 1994), the lexical baseline of a retrieval study.
 *
 * score(q, d) = sum over query terms t (with their multiplicity in q) of
 *   idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
 * idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
 * with N documents, df(t) the documents containing t, |d| the document's token count and avgdl
 * the corpus mean. The idf is the Robertson-Sparck Jones weight as Lucene's `BM25Similarity.idf`
 * implements it (the `1 +` keeps it positive for terms in more than half the documents). The
 * `(k1 + 1)` factor is the classic form (Lucene 8+ drops it: a constant factor, so rankings are
 * the same); document lengths are exact here, where Lucene stores them lossily in one byte, so
 * scores can differ from Lucene's in the last digits and rankings only on near ties.
 *
 * Defaults k1 = 0.9, b = 0.4: Anserini's and Pyserini's (`LuceneSearcher.set_bm25(k1=0.9, b=0.4)`,
 * pyserini/search/lucene/_searcher.py), the values of the BEIR and MS MARCO BM25 baselines.
 *
 * Tokenisation ({@link bm25Tokens}): Unicode lowercase, then split on every character that is not
 * a letter or a digit (`[^\p{L}\p{N}]+`); no stemming and no stop words (Lucene's English analyzer
 * adds both, so scores are not Anserini's on the same text: this is BM25 over plain words).
 * Repeated query words count once per occurrence, as Anserini's bag-of-words query boosts a term by
 * its count.
 * @module
 */

/** BM25 parameters. */
export interface Bm25Params {
  k1: number;
  b: number;
}

/** Anserini/Pyserini defaults. */
export const BM25_DEFAULTS: Bm25Params = { k1: 0.9, b: 0.4 };

/** Lowercase, split on runs of characters that are neither letters nor digits (Unicode classes). */
export function bm25Tokens(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((t) => t.length > 0);
}

/** Robertson-Sparck Jones idf as Lucene computes it: ln(1 + (N - df + 0.5)/(df + 0.5)). */
export function bm25Idf(docCount: number, docFreq: number): number {
  return Math.log(1 + (docCount - docFreq + 0.5) / (docFreq + 0.5));
}

/** An inverted index over a corpus for BM25 scoring. */
export class Bm25Index {
  readonly params: Bm25Params;
  /** Document ids in corpus order. */
  readonly ids: readonly string[];
  readonly #lengths: number[];
  readonly #avgdl: number;
  /** term -> postings (document index, term frequency). */
  readonly #postings = new Map<string, { doc: number; tf: number }[]>();

  /** Index documents (`{id, text}`), tokenised by {@link bm25Tokens}. */
  constructor(docs: readonly { id: string; text: string }[], params: Bm25Params = BM25_DEFAULTS) {
    if (!(params.k1 >= 0) || !(params.b >= 0 && params.b <= 1)) {
      throw new Error(`BM25: k1 must be >= 0 and b in [0, 1], got k1=${params.k1}, b=${params.b}`);
    }
    this.params = params;
    this.ids = docs.map((d) => d.id);
    this.#lengths = [];
    docs.forEach((d, i) => {
      const tokens = bm25Tokens(d.text);
      this.#lengths.push(tokens.length);
      const tf = new Map<string, number>();
      for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let list = this.#postings.get(t);
        if (!list) this.#postings.set(t, list = []);
        list.push({ doc: i, tf: n });
      }
    });
    const total = this.#lengths.reduce((s, n) => s + n, 0);
    // An empty corpus or one of empty documents: every score is 0 (no term matches), avgdl 1 avoids 0/0.
    this.#avgdl = total > 0 ? total / docs.length : 1;
  }

  /** Documents containing a term. */
  docFreq(term: string): number {
    return this.#postings.get(term)?.length ?? 0;
  }

  /** BM25 score of every document for a query text (a Float64Array in corpus order; 0 = no match). */
  scores(query: string): Float64Array {
    const { k1, b } = this.params;
    const n = this.ids.length;
    const out = new Float64Array(n);
    const qtf = new Map<string, number>();
    for (const t of bm25Tokens(query)) qtf.set(t, (qtf.get(t) ?? 0) + 1);
    for (const [t, count] of qtf) {
      const postings = this.#postings.get(t);
      if (!postings) continue;
      const idf = bm25Idf(n, postings.length);
      for (const { doc, tf } of postings) {
        const norm = k1 * (1 - b + (b * this.#lengths[doc]) / this.#avgdl);
        out[doc] += count * idf * (tf * (k1 + 1)) / (tf + norm);
      }
    }
    return out;
  }

  /**
   * The documents matching at least one query term with their scores, as a run row (docid -> score).
   * Like a Lucene search, a document sharing no term with the query is not retrieved; the caller
   * ranks and cuts (bench/metrics/ranking.ts `rankDocuments`).
   */
  matches(query: string): Map<string, number> {
    const s = this.scores(query);
    const row = new Map<string, number>();
    // A matching document always scores > 0: idf > 0 and tf > 0.
    s.forEach((v, i) => {
      if (v > 0) row.set(this.ids[i], v);
    });
    return row;
  }
}
