/**
 * The metric table: every quality metric's name, direction (which way is better), unit and how a
 * difference is shown, and which metric is primary for each task. Tasks, run records, reports,
 * export-csv and the regression check read direction and primary metric from here and nowhere
 * else.
 * @module
 */

import type { TaskKind } from "../../datasets/types.ts";

/** Which way a metric improves. */
export type Direction = "higher" | "lower";

/** The tasks a run can have (as in `RunConfig.task`): the datasets' task kinds. */
export type TaskName = TaskKind;

/** One metric (or a family such as `recall@k`) of the table. */
export interface MetricSpec {
  /** Name as it appears in a record's `metrics` (`recall@5` for a family member). */
  name: string;
  direction: Direction;
  /** What the raw value is: "proportion" (0 to 1), "perplexity", "bits per byte", ... */
  unit: string;
  /** Unit of a difference as reports show it ("accuracy points"); differences are multiplied by `scale`. */
  diffUnit: string;
  scale: number;
  /** Decimals of a difference in `diffUnit`s. */
  digits: number;
  /** trec_eval's name of the measure (retrieval only). */
  trecName?: string;
}

type Entry = Omit<MetricSpec, "name">;

/** Proportions in [0, 1] shown as points (x100): accuracy, F1 and retrieval scores. */
const points = (label: string, trecName?: string): Entry => ({
  direction: "higher",
  unit: "proportion",
  diffUnit: `${label} points`,
  scale: 100,
  digits: 1,
  ...(trecName ? { trecName } : {}),
});
const lower = (unit: string, digits: number): Entry => ({
  direction: "lower",
  unit,
  diffUnit: unit,
  scale: 1,
  digits,
});

/** Metrics with a fixed name. */
const FIXED: Record<string, Entry> = {
  accuracy: points("accuracy"),
  macroF1: points("macro-F1"),
  mrr: points("MRR", "recip_rank"),
  map: points("MAP", "map"),
  ndcg: points("NDCG", "ndcg"),
  perplexity: lower("perplexity", 2),
  bytePerplexity: lower("byte perplexity", 3),
  wordPerplexity: lower("word perplexity", 2),
  bitsPerByte: lower("bits per byte", 4),
  meanNll: lower("nats per token", 4),
  loss: lower("loss", 4),
  nll: lower("nats", 4),
};

/** Families with a cutoff k: `recall@5`, `ndcg@10`, `precision@5` (trec_eval recall_5, ndcg_cut_10, P_5). */
const FAMILIES: { pattern: RegExp; entry: (k: number) => Entry }[] = [
  { pattern: /^recall@(\d+)$/, entry: (k) => points(`Recall@${k}`, `recall_${k}`) },
  { pattern: /^ndcg@(\d+)$/, entry: (k) => points(`NDCG@${k}`, `ndcg_cut_${k}`) },
  { pattern: /^precision@(\d+)$/, entry: (k) => points(`P@${k}`, `P_${k}`) },
];

/** The table's entry for a metric, or undefined when the table does not know it. */
export function metricSpec(name: string): MetricSpec | undefined {
  if (Object.hasOwn(FIXED, name)) return { name, ...FIXED[name] };
  for (const f of FAMILIES) {
    const m = f.pattern.exec(name);
    if (m && Number(m[1]) >= 1) return { name, ...f.entry(Number(m[1])) };
  }
  return undefined;
}

/** Direction of a metric from the table; undefined for a metric the table does not know. */
export function metricDirection(name: string): Direction | undefined {
  return metricSpec(name)?.direction;
}

/** Retrieval cutoffs the retrieve task reports. */
export const RETRIEVE_CUTOFFS = [1, 3, 5, 10] as const;

/**
 * Per task: the primary metric (what ranks runs and the training curve's eval metric), metrics to
 * rank by when a record lacks the primary one (records of older writers), and every metric the
 * task writes, in the order it writes them.
 */
export const TASK_METRICS: Record<TaskName, { primary: string; fallbacks: string[]; reported: string[] }> = {
  classify: { primary: "accuracy", fallbacks: [], reported: ["accuracy", "macroF1"] },
  retrieve: {
    primary: "mrr",
    fallbacks: ["ndcg@10"],
    reported: ["mrr", ...RETRIEVE_CUTOFFS.flatMap((k) => [`recall@${k}`, `ndcg@${k}`])],
  },
  lm: {
    primary: "perplexity",
    fallbacks: [],
    reported: ["perplexity", "bytePerplexity", "bitsPerByte", "wordPerplexity", "meanNll"],
  },
};

/** The measures `deno task eval-run` prints, in its (trec_eval's) order, by table name. */
export const EVAL_RUN_METRICS = [
  "map",
  "mrr",
  "precision@5",
  "precision@10",
  "recall@5",
  "recall@10",
  "ndcg",
  "ndcg@5",
  "ndcg@10",
] as const;

/** Whether a string names a task of the table. */
export function isTask(task: string): task is TaskName {
  return Object.hasOwn(TASK_METRICS, task);
}

/** The primary metric of a task, with its direction. Throws for a task the table does not know. */
export function primaryMetricOf(task: string): MetricSpec {
  if (!isTask(task)) {
    throw new Error(`unknown task '${task}' (tasks: ${Object.keys(TASK_METRICS).join(", ")})`);
  }
  return metricSpec(TASK_METRICS[task].primary)!;
}

/**
 * The metric that ranks a set of runs of `task` whose records carry the metric names
 * `available`: the task's primary metric when present (or when nothing is known), else its first
 * fallback present (retrieve: ndcg@10). Undefined for an unknown task.
 */
export function rankingMetricOf(task: string, available: readonly string[] = []): MetricSpec | undefined {
  if (!isTask(task)) return undefined;
  const t = TASK_METRICS[task];
  if (available.length === 0 || available.includes(t.primary)) return metricSpec(t.primary);
  const alt = t.fallbacks.find((m) => available.includes(m));
  return metricSpec(alt ?? t.primary);
}

/** What a task declares about its primary metric (the `TaskRunner` fields), from the table. */
export function taskPrimary(task: TaskName): { primaryMetric: string; higherIsBetter: boolean } {
  const spec = primaryMetricOf(task);
  return { primaryMetric: spec.name, higherIsBetter: spec.direction === "higher" };
}
