/**
 * The study factors of a run (method, targets, rank, quant, train size) and their levels: the one
 * definition export-csv and the report both read, so a run has the same rank in the CSV as on
 * the report's pages.
 * @module
 */
import type { RunConfig } from "./record.ts";

/** The factors a study varies, in display order. */
export const FACTORS = ["method", "targets", "rank", "quant", "trainSize"] as const;
/** One study factor. */
export type Factor = typeof FACTORS[number];
/** A factor level; null when the factor does not apply to the run (e.g. rank of IA3). */
export type Level = string | number | null;

/** Human names of the factors. */
export const FACTOR_LABELS: Record<Factor, string> = {
  method: "method",
  targets: "targets",
  rank: "rank",
  quant: "quant",
  trainSize: "train size",
};

/**
 * A run's rank: the method's `rank` option, or AdaLoRA's `targetR` (its nominal rank, the average
 * rank per layer after allocation, as the method reports it); null for a method without a rank.
 */
export function runRank(c: Pick<RunConfig, "methodOptions">): number | string | null {
  const o = c.methodOptions ?? {};
  const r = o.rank ?? o.targetR;
  return typeof r === "number" ? r : r === undefined || r === null ? null : String(r);
}

/** A run's targets as one level: a list joined by commas, null when the method takes none. */
export function runTargets(c: Pick<RunConfig, "methodOptions">): string | null {
  const t = c.methodOptions?.targets;
  return t === undefined || t === null ? null : Array.isArray(t) ? t.map(String).join(",") : String(t);
}

/** A run's quantization as one level: the scheme, `+dq` with double quantization. */
export function runQuant(c: Pick<RunConfig, "quant">): string {
  const q = c.quant ?? { scheme: "none" };
  return String(q.scheme) + (q.doubleQuant ? "+dq" : "");
}

/** A run's training-set size as one level: `N/class`, `N`, or `all`. */
export function runTrainSize(c: Pick<RunConfig, "trainPerClass" | "trainSize">): string | number {
  return c.trainPerClass ? `${c.trainPerClass}/class` : c.trainSize ?? "all";
}

/** The factor levels of a config. */
export function factorsOf(c: RunConfig): Record<Factor, Level> {
  return {
    method: String(c.method),
    targets: runTargets(c),
    rank: runRank(c),
    quant: runQuant(c),
    trainSize: runTrainSize(c),
  };
}

/** The number a level starts with (`64/class` -> 64, `1e-4` -> 0.0001), or NaN. */
function leadingNumber(l: string | number): number {
  if (typeof l === "number") return l;
  const m = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(l);
  return m ? Number(m[0]) : NaN;
}

/**
 * Order levels: levels that are or start with a number (`16/class` before `64/class`, 4 before
 * 16) ascending by that number, then the other strings in first-seen order, null last.
 */
export function sortLevels(levels: readonly Level[]): Level[] {
  const nonNull = levels.filter((l): l is string | number => l !== null);
  const nums = nonNull.filter((l) => Number.isFinite(leadingNumber(l)))
    .map((l, i) => ({ l, i, n: leadingNumber(l) }))
    // Equal leading numbers (8 and "8/class") keep their first-seen order.
    .sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.l);
  const strs = nonNull.filter((l) => !Number.isFinite(leadingNumber(l)));
  return [...nums, ...strs, ...levels.filter((l) => l === null)];
}
