/**
 * Ranking metrics in the style of ranx, with trec_eval's conventions.
 *
 * Data shapes:
 * - {@link Qrels}: `Map<qid, Map<docid, relevance>>`. A document is relevant when its relevance is
 *   > 0; relevance <= 0 (trec_eval reads negative values as "in the pool but unjudged") is not relevant and
 *   has gain 0.
 * - {@link Run}: `Map<qid, Map<docid, score>>`. Higher score means ranked earlier.
 *
 * Ranking rule (trec_eval `form_res_rels.c`, `comp_sim_docno`): sort by score descending, ties
 * broken by document id descending (strcmp, i.e. UTF-8 byte order). The rank column of a TREC run
 * file is ignored, as trec_eval does.
 *
 * Per-query metrics take the ranked document ids and the query's judgments; {@link evaluate}
 * applies one to every query and averages as trec_eval does (see {@link queriesToAverage}).
 * @module
 */

import type { Qrels } from "../../datasets/types.ts";
import { metricSpec } from "./table.ts";

/** Relevance judgments: qid -> docid -> relevance (relevant when > 0); defined once, in datasets/types.ts. */
export type { Qrels };
/** A run: qid -> docid -> retrieval score (higher ranks first). */
export type Run = Map<string, Map<string, number>>;
/** Judgments of one query: docid -> relevance. */
export type Judgments = ReadonlyMap<string, number>;
/** A per-query metric: ranked docids (best first) and the query's judgments -> value. */
export type QueryMetric = (ranked: readonly string[], judgments: Judgments) => number;

/** Compare strings by Unicode code point, which equals strcmp on their UTF-8 bytes. */
export function compareCodePoints(a: string, b: string): number {
  // JS `<` compares UTF-16 code units, which disagrees with UTF-8 byte order above U+E000.
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next(), cb = ib.next();
    if (ca.done || cb.done) return (ca.done ? 0 : 1) - (cb.done ? 0 : 1);
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/**
 * Rank a query's documents as trec_eval does: score descending, then docid descending.
 * Throws if a score is not a finite number.
 */
export function rankDocuments(scores: ReadonlyMap<string, number>): string[] {
  for (const [doc, s] of scores) {
    if (!Number.isFinite(s)) {
      throw new Error(`score of document "${doc}" is ${s}; scores must be finite numbers`);
    }
  }
  return [...scores.keys()].sort((a, b) => {
    const d = scores.get(b)! - scores.get(a)!;
    return d !== 0 ? d : compareCodePoints(b, a);
  });
}

function checkCutoff(k: number | undefined): void {
  if (k !== undefined && !(Number.isInteger(k) && k > 0)) {
    throw new Error(`cutoff k must be a positive integer, got ${k}`);
  }
}

function isRelevant(judgments: Judgments, doc: string): boolean {
  return (judgments.get(doc) ?? 0) > 0;
}

/** Number of relevant documents (relevance > 0) in a query's judgments: R. */
export function numRelevant(judgments: Judgments): number {
  let n = 0;
  for (const r of judgments.values()) if (r > 0) n++;
  return n;
}

/**
 * Reciprocal rank: RR = 1 / rank of the first relevant document, 0 if none is retrieved
 * (within the top k when k is given). trec_eval `recip_rank` (no cutoff); ranx `mrr@k`.
 */
export function reciprocalRank(ranked: readonly string[], judgments: Judgments, k?: number): number {
  checkCutoff(k);
  const n = Math.min(ranked.length, k ?? Infinity);
  for (let i = 0; i < n; i++) if (isRelevant(judgments, ranked[i])) return 1 / (i + 1);
  return 0;
}

/**
 * Precision at k: P@k = |relevant in top k| / k. Like trec_eval `P_k`, the divisor is k even when
 * fewer than k documents were retrieved (missing ones count as non-relevant).
 */
export function precisionAt(ranked: readonly string[], judgments: Judgments, k: number): number {
  checkCutoff(k);
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (isRelevant(judgments, ranked[i])) hits++;
  return hits / k;
}

/** Recall at k: R@k = |relevant in top k| / R, and 0 when R = 0 (trec_eval `recall_k`). */
export function recallAt(ranked: readonly string[], judgments: Judgments, k: number): number {
  checkCutoff(k);
  const r = numRelevant(judgments);
  if (r === 0) return 0;
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (isRelevant(judgments, ranked[i])) hits++;
  return hits / r;
}

/**
 * Average precision: AP = (1/R) * sum over relevant retrieved docs at rank i (<= k if given) of
 * P@i; 0 when R = 0. trec_eval `map` / `map_cut_k`; ranx `map@k` (the divisor stays R, not min(R, k)).
 */
export function averagePrecision(ranked: readonly string[], judgments: Judgments, k?: number): number {
  checkCutoff(k);
  const r = numRelevant(judgments);
  if (r === 0) return 0;
  const n = Math.min(ranked.length, k ?? Infinity);
  let hits = 0, sum = 0;
  for (let i = 0; i < n; i++) {
    if (isRelevant(judgments, ranked[i])) sum += ++hits / (i + 1);
  }
  return sum / r;
}

/** Gain function for DCG: "linear" g(rel) = rel (trec_eval), "burges" g(rel) = 2^rel - 1. */
export type GainKind = "linear" | "burges";

function gain(rel: number, kind: GainKind): number {
  if (!(rel > 0)) return 0; // relevance <= 0 (or unjudged) contributes nothing
  return kind === "linear" ? rel : 2 ** rel - 1;
}

/**
 * Discounted cumulative gain: DCG@k = sum_{i=1..min(k,n)} g(rel_i) / log2(i + 1), with g from
 * {@link GainKind} (trec_eval `m_ndcg.c` discounts doc i (0-based) by log2(i + 2)).
 */
export function dcg(
  ranked: readonly string[],
  judgments: Judgments,
  k?: number,
  kind: GainKind = "linear",
): number {
  checkCutoff(k);
  const n = Math.min(ranked.length, k ?? Infinity);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += gain(judgments.get(ranked[i]) ?? 0, kind) / Math.log2(i + 2);
  return sum;
}

/** Options of {@link ndcg}: cutoff k (none = full ranking) and the gain function. */
export interface NdcgOptions {
  k?: number;
  gain?: GainKind;
}

/**
 * Normalized DCG: NDCG@k = DCG@k / IDCG@k, where IDCG@k is the DCG of the judged documents sorted
 * by relevance descending (the ideal ranking from the qrels, cut at k too, as trec_eval
 * `ndcg_cut_k`). 0 when IDCG = 0. Without k this is trec_eval `ndcg`; ranx `ndcg@k` /
 * `ndcg_burges@k` with `gain: "burges"`.
 */
export function ndcg(ranked: readonly string[], judgments: Judgments, opts: NdcgOptions = {}): number {
  const kind = opts.gain ?? "linear";
  const ideal = [...judgments.entries()].filter(([, r]) => r > 0).sort((a, b) => b[1] - a[1]).map(([d]) => d);
  const idcg = dcg(ideal, judgments, opts.k, kind);
  return idcg > 0 ? dcg(ranked, judgments, opts.k, kind) / idcg : 0;
}

/**
 * Which queries a mean is taken over:
 * - "trec_eval" (default): queries of the run that also appear in the qrels, whatever their
 *   judgments (a query whose judgments are all <= 0 stays in and scores 0 on every measure here).
 *   This is trec_eval's `num_q`. Run queries the qrels lack are skipped (trec_eval 9; ranx);
 * - "complete": every query of the qrels, as `trec_eval -c`; a qrels query missing from the run
 *   scores 0 on every measure (trec_eval's help: "Missing queries will contribute a value of 0 to
 *   all evaluation measures").
 * - "with_relevant": only run queries with at least one relevant (> 0) document in the qrels.
 *
 * trec_eval 10 stops on them instead: call {@link checkRunQueriesJudged} first for that rule (the
 * `eval-run` command does; the retrieval task evaluates a split's queries and skips unjudged ones).
 */
export type AverageOver = "trec_eval" | "complete" | "with_relevant";

/** The qids averaged over, in run order (qrels order for "complete"), for {@link AverageOver}. */
export function queriesToAverage(qrels: Qrels, run: Run, over: AverageOver = "trec_eval"): string[] {
  if (over === "complete") return [...qrels.keys()];
  return [...run.keys()].filter((q) => {
    const j = qrels.get(q);
    return j !== undefined && (over === "trec_eval" || numRelevant(j) > 0);
  });
}

/**
 * Throw, naming them, when the run has queries the qrels lack: trec_eval 10 stops on such a run
 * rather than skipping the query ({@link evaluate} skips them).
 */
export function checkRunQueriesJudged(qrels: Qrels, run: Run): void {
  const missing = [...run.keys()].filter((q) => !qrels.has(q));
  if (missing.length === 0) return;
  const shown = missing.slice(0, 5).map((q) => `"${q}"`).join(", ");
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
  throw new Error(
    `run ${missing.length === 1 ? "query" : "queries"} ${shown}${more} not in the qrels ` +
      `(trec_eval 10 stops here too); add their judgments to the qrels or remove them from the run`,
  );
}

function noQueryMessage(over: AverageOver): string {
  if (over === "complete") return "the qrels have no query to average over; check the qrels file";
  if (over === "with_relevant") {
    return "no run query has a relevant document in the qrels; check that the qrels and run use the same query ids";
  }
  return "no run query appears in the qrels; check that the qrels and run use the same query ids";
}

/** Result of {@link evaluate}: per-query values and their arithmetic mean. */
export interface Evaluation {
  perQuery: Map<string, number>;
  mean: number;
}

/**
 * Evaluate a run: value_q = metric(rank(run_q), qrels_q) for each q in
 * {@link queriesToAverage}(qrels, run, over) (0 for a qrels query absent from the run, "complete"
 * only), and mean = sum_q value_q / |q|. Throws when no query qualifies, as trec_eval does ("No
 * queries with both results and relevance info").
 */
export function evaluate(
  qrels: Qrels,
  run: Run,
  metric: QueryMetric,
  over: AverageOver = "trec_eval",
): Evaluation {
  const qids = queriesToAverage(qrels, run, over);
  if (qids.length === 0) {
    throw new Error(noQueryMessage(over));
  }
  const perQuery = new Map<string, number>();
  let sum = 0;
  for (const q of qids) {
    const scores = run.get(q);
    const v = scores === undefined ? 0 : metric(rankDocuments(scores), qrels.get(q)!);
    perQuery.set(q, v);
    sum += v;
  }
  return { perQuery, mean: sum / qids.length };
}

/** Build {@link Qrels} or a {@link Run} from plain records, e.g. `{ q_1: { d_12: 5 } }`. */
export function fromRecords(
  records: Record<string, Record<string, number>>,
): Map<string, Map<string, number>> {
  return new Map(Object.entries(records).map(([q, docs]) => [q, new Map(Object.entries(docs))]));
}

/**
 * The per-query function of a ranking metric named as in the metric table (`mrr`, `map`, `ndcg`,
 * `recall@k`, `ndcg@k`, `precision@k`): the one name-to-function map the retrieve task and
 * `eval-run` share. Throws for a name that is not a ranking metric of the table.
 */
export function rankingMeasure(name: string): QueryMetric {
  const k = Number(/@(\d+)$/.exec(name)?.[1]);
  if (metricSpec(name)?.unit !== "proportion") throw new Error(`'${name}' is not a ranking metric`);
  if (name === "mrr") return (r, j) => reciprocalRank(r, j);
  if (name === "map") return (r, j) => averagePrecision(r, j);
  if (name === "ndcg") return (r, j) => ndcg(r, j);
  if (name.startsWith("recall@")) return (r, j) => recallAt(r, j, k);
  if (name.startsWith("ndcg@")) return (r, j) => ndcg(r, j, { k });
  if (name.startsWith("precision@")) return (r, j) => precisionAt(r, j, k);
  throw new Error(`'${name}' is not a ranking metric`);
}
