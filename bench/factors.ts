/**
 * The study factors of a run (method, targets, rank, quant, train size) and their levels: the one
 * definition export-csv and the report both read, so a run has the same rank in the CSV as on
 * the report's pages.
 * @module
 */
import { canonicalJson, type RunConfig } from "./record.ts";

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

/** A method option whose value follows a factor's level in a set of runs (alpha = 2 x rank). */
export interface BoundOption {
  method: string;
  option: string;
  /** The option's value at each level, levels in {@link sortLevels} order. */
  values: [Level, unknown][];
}

/**
 * The method options that are part of a factor's level in a set of runs: per method, an option
 * (other than targets and rank, the factors' own) that takes exactly one value at each level of
 * `factor` and not the same value at all of them, such as LoRA's alpha set to 2 x rank by a sweep
 * that holds alpha / r fixed. Comparing two levels then compares the settings as they were run,
 * the option along with the level, instead of finding no pair that differs in the factor alone.
 * An option crossed with the factor (two alphas at one rank) is not bound: it stays a setting of
 * its own that comparisons hold fixed. Options of different methods never bind across the method
 * factor (the same name means different things in two methods), so `method` binds none.
 */
export function levelBoundOptions(configs: readonly RunConfig[], factor: Factor): BoundOption[] {
  if (factor === "method") return [];
  const byMethod = new Map<string, RunConfig[]>();
  for (const c of configs) {
    if (factorsOf(c)[factor] === null) continue;
    byMethod.set(String(c.method), [...(byMethod.get(String(c.method)) ?? []), c]);
  }
  const out: BoundOption[] = [];
  for (const [method, cs] of byMethod) {
    const levels = sortLevels([...new Set(cs.map((c) => factorsOf(c)[factor]))]);
    if (levels.length < 2) continue;
    const options = [...new Set(cs.flatMap((c) => Object.keys(c.methodOptions ?? {})))].sort()
      .filter((k) => k !== "targets" && k !== "rank");
    for (const option of options) {
      // Level -> the distinct values (canonical JSON, absent as null) the option takes there.
      const seen = new Map<Level, Map<string, unknown>>(levels.map((l) => [l, new Map()]));
      for (const c of cs) {
        const v = c.methodOptions?.[option] ?? null;
        seen.get(factorsOf(c)[factor])!.set(canonicalJson(v), v);
      }
      const single = [...seen.values()].every((m) => m.size === 1);
      const distinct = new Set([...seen.values()].flatMap((m) => [...m.keys()])).size;
      if (single && distinct > 1) {
        out.push({ method, option, values: levels.map((l) => [l, [...seen.get(l)!.values()][0]]) });
      }
    }
  }
  return out;
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
