/**
 * Trivial baselines of a classification study and runs whose predictions collapse to one class,
 * from the per-item results the classify task writes (`{id, label, pred, correct}` per test
 * example) and its `details.perClass` (the full label set).
 *
 * Majority class: always answer the most frequent test label c (share p_c). Accuracy = p_c;
 * macro-F1 over K labels = F1_c / K with F1_c = 2 p_c / (1 + p_c) (precision p_c, recall 1; every
 * other class scores 0, sklearn's zero_division=0), computed here with the task's own metrics.
 * Chance: a uniform random guess, expected accuracy 1/K.
 * @module
 */
import { accuracy, macroF1 } from "../bench/metrics/classification.ts";
import type { RunRecord } from "../bench/record.ts";
import { randomExpected } from "../bench/metrics/random_ranking.ts";

/** A run predicting one class for this share of its test items (or more) is flagged. */
export const COLLAPSE_SHARE = 0.9;

/** Trivial scores on a run's evaluated test items. */
export interface TrivialScores {
  items: number;
  /** Labels the task scores over (K). */
  classes: number;
  majorityLabel: string;
  majorityAccuracy: number;
  majorityMacroF1: number;
  chanceAccuracy: number;
}

/** The labelled test items of a run: true and predicted label per item, or null when absent. */
function labelled(run: RunRecord): { label: string; pred: string }[] | null {
  const out: { label: string; pred: string }[] = [];
  for (const item of run.perItem ?? []) {
    if (!item || typeof item !== "object") continue;
    const { label, pred } = item as Record<string, unknown>;
    if (
      (typeof label === "string" || typeof label === "number") &&
      (typeof pred === "string" || typeof pred === "number")
    ) {
      out.push({ label: String(label), pred: String(pred) });
    }
  }
  return out.length ? out : null;
}

/** The label set of a run: `details.perClass` labels (the task's full set), else those seen. */
function labelsOf(run: RunRecord, items: { label: string; pred: string }[]): string[] {
  const perClass = run.details?.perClass;
  const fromDetails = Array.isArray(perClass)
    ? perClass.map((c) => (c && typeof c === "object" ? (c as Record<string, unknown>).label : undefined))
      .filter((l) => l !== undefined).map(String)
    : [];
  const seen = new Set([...fromDetails, ...items.flatMap((i) => [i.label, i.pred])]);
  return [...seen];
}

/** The most frequent value (ties: the first seen) and its count. */
function mode(values: readonly string[]): { value: string; count: number } {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = { value: values[0], count: 0 };
  for (const [value, count] of counts) if (count > best.count) best = { value, count };
  return best;
}

/** Majority-class and chance scores on a classification run's test items; null without labels. */
export function trivialScores(run: RunRecord): TrivialScores | null {
  if (run.config?.task !== "classify") return null;
  const items = labelled(run);
  if (!items) return null;
  const labels = labelsOf(run, items);
  const yTrue = items.map((i) => i.label);
  const major = mode(yTrue).value;
  const constant = yTrue.map(() => major);
  return {
    items: items.length,
    classes: labels.length,
    majorityLabel: major,
    majorityAccuracy: accuracy(yTrue, constant),
    majorityMacroF1: macroF1(yTrue, constant, labels),
    chanceAccuracy: 1 / labels.length,
  };
}

/** A run's most predicted class and its share of the run's predictions; null without predictions. */
export function predictionShare(run: RunRecord): { label: string; share: number } | null {
  const items = labelled(run);
  if (!items) return null;
  const m = mode(items.map((i) => i.pred));
  return { label: m.value, share: m.count / items.length };
}

/** Whether a run put at least {@link COLLAPSE_SHARE} of its predictions in one class. */
export function collapsed(run: RunRecord): { label: string; share: number } | null {
  const s = predictionShare(run);
  return s && s.share >= COLLAPSE_SHARE ? s : null;
}

/** Expected scores of a uniformly random ranking on a retrieval run's evaluation corpus. */
export interface RandomRankingScores {
  corpusSize: number;
  queries: number;
  /** True when the records do not give each query's relevant count and one relevant is assumed. */
  assumedOneRelevant: boolean;
  /** Metric name -> expected mean over the queries (mrr, recall@k, precision@k). */
  scores: Record<string, number>;
}

/**
 * The random-ranking baseline of a retrieval run in closed form (bench/metrics/random_ranking.ts)
 * over its corpus (`details.corpusSize`), averaged over its queries; each query's relevant count
 * is its per-item `relevant` field when the record has one, else 1 (said in the result). Null for
 * other tasks or without a corpus size.
 */
export function randomRankingScores(run: RunRecord): RandomRankingScores | null {
  if (run.config?.task !== "retrieve") return null;
  const n = run.details?.corpusSize;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) return null;
  const items = (run.perItem ?? []).filter((i) => i && typeof i === "object");
  const rel = items.map((i) => (i as Record<string, unknown>).relevant);
  const known = rel.length > 0 &&
    rel.every((r) => typeof r === "number" && Number.isInteger(r) && r >= 0 && r <= n);
  const rs = known ? rel as number[] : Array(Math.max(1, items.length)).fill(1);
  const names = Object.keys(run.metrics ?? {}).filter((m) => randomExpected(m, n, 1) !== undefined);
  const scores: Record<string, number> = {};
  for (const m of names) scores[m] = rs.reduce((s, r) => s + randomExpected(m, n, r)!, 0) / rs.length;
  return { corpusSize: n, queries: items.length, assumedOneRelevant: !known, scores };
}
