/**
 * Report data model: which metric ranks each task, the study factors of a run, and records
 * grouped into studies (one task + dataset) and configurations (one config over seeds).
 * @module
 */
import { canonicalJson, type RunConfig, runName, type RunRecord } from "../bench/record.ts";
import { type Direction, metricSpec, rankingMetricOf } from "../bench/metrics/table.ts";
import { type Factor, FACTORS, factorsOf, type Level, sortLevels } from "../bench/factors.ts";
import { mean, sd } from "./stats/mod.ts";
import { InputError } from "../models/util/args.ts";
import type { Hypothesis } from "../bench/sweep_plan.ts";

export type { Direction } from "../bench/metrics/table.ts";
export { FACTOR_LABELS, FACTORS, factorsOf, levelBoundOptions, sortLevels } from "../bench/factors.ts";
export type { BoundOption, Factor, Level } from "../bench/factors.ts";

/** How a metric is ranked and shown. */
export interface MetricSpec {
  name: string;
  direction: Direction;
  /** Unit for verdicts ("accuracy points"); differences are multiplied by `scale` first. */
  unit: string;
  scale: number;
  /** Decimals of a difference in `unit`s. */
  digits: number;
}

/**
 * A metric as the report shows it, from the metric table (bench/metrics/table.ts). A metric the
 * table does not know is shown raw (scale 1); its direction is taken as "higher" only for ranking
 * and is said so wherever it is ranked.
 */
export function reportMetric(name: string): MetricSpec {
  const t = metricSpec(name);
  if (t) return { name, direction: t.direction, unit: t.diffUnit, scale: t.scale, digits: t.digits };
  return { name, direction: "higher", unit: name, scale: 1, digits: 3 };
}

/**
 * The metric that ranks a study's runs: the primary metric the records name (new writers store
 * it), else the table's primary metric of the task (classify → accuracy, retrieve → mrr, or
 * ndcg@10 when a study has no mrr, lm → perplexity). `available` are the metric names the study's
 * runs carry; a task the table does not know falls back to the first of them.
 */
export function primaryMetric(
  task: string,
  available: readonly string[] = [],
  stored: readonly (string | undefined)[] = [],
): MetricSpec {
  const named = [...new Set(stored.filter((s): s is string => s !== undefined))];
  if (named.length === 1 && (available.length === 0 || available.includes(named[0]))) {
    return reportMetric(named[0]);
  }
  const spec = rankingMetricOf(task, available);
  return reportMetric(spec?.name ?? available[0] ?? "score");
}

/** Digits of a metric's value in tables (from the table: two more than its difference digits when x100). */
export function valueDigits(name: string): number {
  const t = metricSpec(name);
  if (!t) return 3;
  return t.scale === 100 ? 3 : t.digits;
}

/** The config without its seed: runs that share it are repeats of one configuration. */
export function configKey(c: RunConfig): string {
  const { seed: _seed, ...rest } = c;
  return canonicalJson(rest);
}

/**
 * Everything except the seed and the five factors, as one string: runs of one study that differ
 * here (learning rate, epochs, ...) are never compared as if only a factor changed. `bound` names
 * method options left out too: those that follow the compared factor's level
 * (bench/factors.ts levelBoundOptions).
 */
export function otherKey(c: RunConfig, bound: ReadonlySet<string> = new Set()): string {
  const { seed: _s, method: _m, trainSize: _t, trainPerClass: _p, quant, methodOptions, ...rest } = c;
  const { targets: _tg, rank: _r, ...all } = methodOptions ?? {};
  const opts = Object.fromEntries(Object.entries(all).filter(([k]) => !bound.has(k)));
  const { scheme: _sc, doubleQuant: _dq, ...q } = quant ?? { scheme: "none" };
  return canonicalJson({ ...rest, opts, q });
}

/** Mean, SD (NaN for one value) and count of a metric over a configuration's seeds. */
export interface Summary {
  mean: number;
  sd: number;
  n: number;
}

/** Summarise finite values; undefined when there are none. */
export function summarize(values: readonly (number | undefined)[]): Summary | undefined {
  const xs = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  return { mean: mean(xs), sd: xs.length > 1 ? sd(xs) : NaN, n: xs.length };
}

/** One configuration over its seeds (successful runs only). */
export interface ConfigGroup {
  key: string;
  /** runName without the seed. */
  label: string;
  factors: Record<Factor, Level>;
  runs: RunRecord[];
  seeds: number[];
  metrics: Record<string, Summary>;
  primary: Summary;
  trainSeconds?: Summary;
  peakTrainBytes?: Summary;
  trainableParams?: number;
  /** Forgetting over the seeds that recorded it (`forgetting.delta`, nats per token; bench/forgetting.ts). */
  forgetting?: Summary;
}

/** Runs of one task on one dataset, ranked by one metric. */
export interface Study {
  id: string;
  task: string;
  dataset: string;
  metric: MetricSpec;
  /** Every run, failed ones included. */
  runs: RunRecord[];
  /** Successful runs with a finite primary metric: what the statistics use. */
  ok: RunRecord[];
  failed: RunRecord[];
  /** Successful runs without the primary metric (shown, not analysed). */
  incomplete: RunRecord[];
  groups: ConfigGroup[];
  /** Metric names carried by the successful runs, primary first. */
  metricNames: string[];
  /** Factors with at least two levels among `ok`. */
  varying: Factor[];
  /** Why the analysed metric is not the task's primary one, or why `--metric` did not apply. */
  metricNote?: string;
  /** The sweep file's factors that vary among `ok` (seed excluded), when `--sweep` names them. */
  sweepFactors?: string[];
  /** Run id -> sweep factor -> level name, when `--sweep` names them. */
  sweepLevels?: Map<string, Record<string, string>>;
  /** The sweep file the names come from. */
  sweepSource?: string;
  /** Why the sweep's names were not used. */
  sweepNote?: string;
  /** Hypotheses the sweep file declares (answered by reports/hypotheses.ts), when `--sweep` names one. */
  hypotheses?: Hypothesis[];
}

/** Value of the study's primary metric for a run (undefined when absent or not finite). */
export function valueOf(run: RunRecord, metric: MetricSpec): number | undefined {
  const v = run.metrics?.[metric.name];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** A run's label without its seed. */
export function configLabel(c: RunConfig): string {
  return runName(c).replace(/ seed-?\d+$/, "");
}

/** The distinct non-null levels of a factor over some runs, sorted. */
export function levelsOf(runs: readonly RunRecord[], factor: Factor): Level[] {
  const seen = new Set<Level>();
  for (const r of runs) {
    const l = factorsOf(r.config)[factor];
    if (l !== null) seen.add(l);
  }
  return sortLevels([...seen]);
}

/** A file-system safe slug (ASCII letters, digits, `._-`). */
export function slug(text: string): string {
  const s = text.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 80);
  return s || "x";
}

/** Options of {@link buildStudies}. */
export interface StudyOptions {
  /**
   * Metric to analyse instead of the task's primary one (`macroF1`, `ndcg@10`). Studies whose runs
   * do not carry it keep their primary metric and say so in `metricNote`; when no study carries it,
   * buildStudies throws naming the metrics that exist.
   */
  metric?: string;
  /**
   * The sweep file's own factor and level names (`deno task report --sweep FILE`): run id ->
   * factor -> level name, from the sweep's plan. Run records do not carry them; without this the
   * factors are derived from each run's config (bench/factors.ts).
   */
  sweep?: SweepLevels;
}

/** A sweep plan's level names by run id, and its factors in file order. */
export interface SweepLevels {
  /** Sweep file the names come from (for notes). */
  source: string;
  factors: string[];
  byRun: Map<string, Record<string, string>>;
  /** The hypotheses the sweep file declares (bench/sweep_plan.ts parseHypotheses). */
  hypotheses?: Hypothesis[];
}

/** Split records into studies (task + dataset), each with its configurations. */
export function buildStudies(records: readonly RunRecord[], opts: StudyOptions = {}): Study[] {
  const byStudy = new Map<string, RunRecord[]>();
  for (const r of records) {
    const k = JSON.stringify([String(r.config?.task), String(r.config?.dataset)]);
    if (!byStudy.has(k)) byStudy.set(k, []);
    byStudy.get(k)!.push(r);
  }
  const studies: Study[] = [];
  const usedIds = new Set<string>();
  for (const [k, runs] of [...byStudy].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [task, dataset] = JSON.parse(k) as [string, string];
    const succeeded = runs.filter((r) => r.status !== "failed");
    const names = new Set<string>();
    for (const r of succeeded) {
      for (const [m, v] of Object.entries(r.metrics ?? {})) if (typeof v === "number") names.add(m);
    }
    const primary = primaryMetric(task, [...names], succeeded.map((r) => r.primaryMetric));
    const chosen = opts.metric !== undefined && names.has(opts.metric);
    const metric = chosen ? reportMetric(opts.metric!) : primary;
    const metricNote = opts.metric === undefined || chosen
      ? (chosen && opts.metric !== primary.name
        ? `analysed metric ${opts.metric} (chosen with --metric; the task's primary is ${primary.name})`
        : undefined)
      : `no run carries ${opts.metric}: this study is analysed by its primary metric ${primary.name}`;
    const ok = succeeded.filter((r) => valueOf(r, metric) !== undefined);
    const incomplete = succeeded.filter((r) => valueOf(r, metric) === undefined);
    const metricNames = [metric.name, ...[...names].filter((n) => n !== metric.name).sort()];
    // The sweep's own names apply only when every analysed run is in the plan.
    const sweep = opts.sweep && ok.length > 0 && ok.every((r) => opts.sweep!.byRun.has(r.runId))
      ? opts.sweep
      : undefined;
    const sweepFactors = sweep?.factors.filter((f) =>
      f !== "seed" && new Set(ok.map((r) => sweep.byRun.get(r.runId)![f])).size >= 2
    );
    const sweepNote = opts.sweep && !sweep
      ? `some runs are not in the plan of ${opts.sweep.source}: factors derived from the run configs`
      : undefined;
    let id = slug(`${task}-${dataset}`);
    while (usedIds.has(id)) id += "_";
    usedIds.add(id);
    studies.push({
      id,
      task,
      dataset,
      metric,
      runs,
      ok,
      failed: runs.filter((r) => r.status === "failed"),
      incomplete,
      groups: groupConfigs(ok, metric, metricNames, sweep, sweepFactors),
      metricNames,
      varying: FACTORS.filter((f) => levelsOf(ok, f).length >= 2),
      ...(metricNote ? { metricNote } : {}),
      ...(sweep && sweepFactors ? { sweepFactors, sweepLevels: sweep.byRun, sweepSource: sweep.source } : {}),
      ...(sweepNote ? { sweepNote } : {}),
      ...(opts.sweep?.hypotheses?.length ? { hypotheses: opts.sweep.hypotheses } : {}),
    });
  }
  if (
    opts.metric !== undefined && studies.length > 0 && studies.every((s) => s.metric.name !== opts.metric)
  ) {
    const all = [...new Set(studies.flatMap((s) => s.metricNames))].sort();
    throw new InputError(
      `no run carries metric '${opts.metric}' (--metric); the runs carry: ${all.join(", ")}`,
    );
  }
  return studies;
}

/** Group successful runs by configuration (config minus seed), best primary metric first. */
export function groupConfigs(
  runs: readonly RunRecord[],
  metric: MetricSpec,
  metricNames: readonly string[],
  sweep?: SweepLevels,
  sweepFactors?: readonly string[],
): ConfigGroup[] {
  const byKey = new Map<string, RunRecord[]>();
  for (const r of runs) {
    const k = configKey(r.config);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(r);
  }
  const groups: ConfigGroup[] = [];
  for (const [key, rs] of byKey) {
    rs.sort((a, b) => a.config.seed - b.config.seed);
    const metrics: Record<string, Summary> = {};
    for (const m of metricNames) {
      const s = summarize(rs.map((r) => r.metrics?.[m]));
      if (s) metrics[m] = s;
    }
    groups.push({
      key,
      // With the sweep's names a configuration reads as the sweep file wrote it ("method lora+nf4, rank 4").
      label: sweep && sweepFactors?.length
        ? sweepFactors.map((f) => `${f} ${sweep.byRun.get(rs[0].runId)![f]}`).join(", ")
        : configLabel(rs[0].config),
      factors: factorsOf(rs[0].config),
      runs: rs,
      seeds: rs.map((r) => r.config.seed),
      metrics,
      primary: metrics[metric.name],
      trainSeconds: summarize(rs.map((r) => r.timing?.trainSeconds)),
      peakTrainBytes: summarize(rs.map((r) => r.memory?.peakTrainBytes)),
      trainableParams: rs[0].size?.trainableParams,
      forgetting: summarize(rs.map((r) => r.forgetting?.delta)),
    });
  }
  const sign = metric.direction === "higher" ? -1 : 1;
  return groups.sort((a, b) => sign * (a.primary.mean - b.primary.mean) || (a.label < b.label ? -1 : 1));
}

/** Per-item scores of a run: `id` → value of `field`, from `perItem` entries with an id. */
export function perItemScores(run: RunRecord, field: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of run.perItem ?? []) {
    if (!item || typeof item !== "object") continue;
    const id = item.id;
    const v = item[field];
    if ((typeof id === "string" || typeof id === "number") && typeof v === "number" && Number.isFinite(v)) {
      out.set(String(id), v);
    }
  }
  return out;
}

/** The numeric fields of a run's per-item entries (besides the id), in first-seen order. */
export function perItemFields(run: RunRecord): string[] {
  const seen = new Set<string>();
  for (const item of run.perItem ?? []) {
    if (!item || typeof item !== "object") continue;
    for (const [k, v] of Object.entries(item)) if (k !== "id" && typeof v === "number") seen.add(k);
  }
  return [...seen];
}
