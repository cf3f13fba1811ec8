/**
 * The trivial retrieval baseline in closed form: the expected score of a uniformly random ranking
 * of a corpus of N documents of which R are relevant to the query (every permutation equally
 * likely), for the measures of bench/metrics/ranking.ts.
 *
 * - Reciprocal rank: the first relevant document is at rank k with probability
 *   `P(k) = [prod_{i=0}^{k-2} (N-R-i)/(N-i)] * R/(N-k+1)` (k-1 non-relevant draws, then a relevant
 *   one), so `E[RR] = sum_{k=1}^{N-R+1} P(k)/k`; for R = 1 this is `H_N / N`.
 * - Recall@k: each relevant document lands in the top k with probability `min(k, N)/N`, so
 *   `E[R@k] = min(k, N)/N` whatever R is (0 when R = 0).
 * - Precision@k (divisor k, as trec_eval): `E[P@k] = R min(k, N) / (N k)`.
 * - NDCG@k (linear gain, as bench/metrics/ranking.ts): the document at each rank is uniform over the
 *   corpus, so by linearity `E[DCG@k] = (G / N) sum_{i=1}^{min(k,N)} 1/log2(i+1)` with G the summed
 *   gain of the query's judged documents in the corpus; the ideal DCG does not depend on the
 *   ranking, so `E[NDCG@k] = E[DCG@k] / IDCG@k`.
 * - A run cut at `depth` documents (the retrieve task keeps 100) scores RR 0 when the first
 *   relevant document falls below the cut: the RR sum stops at k = depth.
 * @module
 */

function check(n: number, r: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`random ranking: corpus size must be a positive integer, got ${n}`);
  }
  if (!Number.isInteger(r) || r < 0 || r > n) {
    throw new Error(`random ranking: relevant count must be an integer in [0, ${n}], got ${r}`);
  }
}

/**
 * Expected reciprocal rank of a random ranking of `n` documents, `r` of them relevant (0 when
 * r = 0), of a run holding its first `depth` documents (all when absent).
 */
export function randomExpectedRR(n: number, r: number, depth = Infinity): number {
  check(n, r);
  if (r === 0) return 0;
  let none = 1; // probability that ranks 1..k-1 are all non-relevant
  let e = 0;
  for (let k = 1; k <= Math.min(n - r + 1, depth); k++) {
    e += (none * r) / (n - k + 1) / k;
    none *= (n - r - (k - 1)) / (n - (k - 1));
  }
  return e;
}

/** Expected Recall@k of a random ranking: `min(k, n)/n` (0 when r = 0, as trec_eval's recall). */
export function randomExpectedRecall(n: number, r: number, k: number): number {
  check(n, r);
  return r === 0 ? 0 : Math.min(k, n) / n;
}

/** Expected Precision@k of a random ranking: `r min(k, n) / (n k)`. */
export function randomExpectedPrecision(n: number, r: number, k: number): number {
  check(n, r);
  return (r * Math.min(k, n)) / (n * k);
}

/**
 * Expected NDCG@k (linear gain, trec_eval `ndcg_cut_k`) of a random ranking of `n` documents:
 * `gains` are the relevance grades (> 0 count) of the query's judged documents present in the
 * corpus, `idealGains` those the ideal DCG is built from (every judged document; the same list when
 * absent), `depth` the run's cut (ranks below it add no gain). 0 when the ideal DCG is 0, as
 * bench/metrics/ranking.ts `ndcg` scores it.
 */
export function randomExpectedNdcg(
  n: number,
  gains: readonly number[],
  k: number,
  idealGains: readonly number[] = gains,
  depth = Infinity,
): number {
  const positive = gains.filter((g) => g > 0);
  check(n, positive.length);
  if (!(Number.isInteger(k) && k > 0)) {
    throw new Error(`random ranking: cutoff must be a positive integer, got ${k}`);
  }
  const discount = (i: number) => 1 / Math.log2(i + 2); // rank i + 1
  const ideal = idealGains.filter((g) => g > 0).sort((a, b) => b - a).slice(0, k)
    .reduce((s, g, i) => s + g * discount(i), 0);
  if (ideal === 0) return 0;
  let discounts = 0;
  for (let i = 0; i < Math.min(k, n, depth); i++) discounts += discount(i);
  return (positive.reduce((s, g) => s + g, 0) / n) * discounts / ideal;
}

/**
 * The random-ranking expectation of a table metric name (`mrr`, `recall@5`, `precision@10`) for
 * one query, or undefined for a measure without a closed form here (NDCG, MAP).
 */
export function randomExpected(name: string, n: number, r: number): number | undefined {
  if (name === "mrr") return randomExpectedRR(n, r);
  const m = /^(recall|precision)@(\d+)$/.exec(name);
  if (!m) return undefined;
  const k = Number(m[2]);
  return m[1] === "recall" ? randomExpectedRecall(n, r, k) : randomExpectedPrecision(n, r, k);
}

/**
 * The random-ranking expectation of a table metric for one query with graded judgments: `gains`
 * are the relevance grades of its judged documents in the corpus (a document is relevant when its
 * grade is > 0), `idealGains` every judged grade (for NDCG's ideal DCG; `gains` when absent) and
 * `depth` the run's cut (recall@k and precision@k see at most `depth` documents). Undefined for a
 * measure without a closed form here (MAP, NDCG without a cutoff).
 */
export function randomExpectedGraded(
  name: string,
  n: number,
  gains: readonly number[],
  opts: { depth?: number; idealGains?: readonly number[] } = {},
): number | undefined {
  const r = gains.filter((g) => g > 0).length;
  const depth = opts.depth ?? Infinity;
  if (name === "mrr") return randomExpectedRR(n, r, depth);
  const m = /^(recall|precision|ndcg)@(\d+)$/.exec(name);
  if (!m) return undefined;
  const k = Number(m[2]);
  const seen = Math.min(k, depth);
  if (m[1] === "recall") return randomExpectedRecall(n, r, seen);
  // Precision's divisor stays k when the run holds fewer documents (trec_eval P_k).
  if (m[1] === "precision") return randomExpectedPrecision(n, r, seen) * seen / k;
  return randomExpectedNdcg(n, gains, k, opts.idealGains ?? gains, depth);
}
