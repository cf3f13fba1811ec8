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

/** Expected reciprocal rank of a random ranking of `n` documents, `r` of them relevant (0 when r = 0). */
export function randomExpectedRR(n: number, r: number): number {
  check(n, r);
  if (r === 0) return 0;
  let none = 1; // probability that ranks 1..k-1 are all non-relevant
  let e = 0;
  for (let k = 1; k <= n - r + 1; k++) {
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
