/**
 * The main table of a report in paste-ready forms: one column definition (name and unit in the
 * header) that REPORT.md, index.html, `summary.csv` and `summary.tex` (booktabs) all read.
 * Quality metrics shown as points (x100) are in % everywhere, the same unit as their differences
 * in the statistics; time is in minutes, memory in MiB.
 * @module
 */
import { metricSpec } from "../bench/metrics/table.ts";
import type { RunRecord } from "../bench/record.ts";
import { type ConfigGroup, FACTORS, type Study, summarize, type Summary } from "./data.ts";

const MiB = 1024 * 1024;

/** Header of a metric column with its unit: `accuracy (%)`, `perplexity`, `bitsPerByte (bits per byte)`. */
export function metricHeader(name: string): string {
  const t = metricSpec(name);
  if (!t) return name;
  if (t.scale === 100) return `${name} (%)`;
  return t.unit === name ? name : `${name} (${t.unit})`;
}

/** Factor by which a metric's raw value is multiplied for display (100 for proportions shown in %). */
export function metricScale(name: string): number {
  return metricSpec(name)?.scale ?? 1;
}

/** Decimals of a metric value in the summary: one more than its difference digits, 3 when unknown. */
export function metricDecimals(name: string): number {
  const t = metricSpec(name);
  return t ? t.digits + 1 : 3;
}

/** Final training loss of a run: the last curve point's loss, undefined without a curve. */
export function finalLoss(run: RunRecord): number | undefined {
  const c = run.curve;
  const last = Array.isArray(c) && c.length ? c[c.length - 1]?.loss : undefined;
  return typeof last === "number" && Number.isFinite(last) ? last : undefined;
}

/** Cost columns of the summary, with their units. */
export const COST_HEADERS = {
  trainTime: "train time (min)",
  memory: "peak train memory (MiB)",
  params: "trainable params",
  finalLoss: "final train loss",
  forgetting: "forgetting (nats per token)",
} as const;

/** One summary row of a configuration: numbers in display units (NaN/undefined when absent). */
export interface SummaryRow {
  config: string;
  model: string;
  factors: (string | number | null)[];
  seeds: number;
  metrics: (Summary | undefined)[];
  trainMinutes?: Summary;
  memoryMiB?: Summary;
  trainableParams?: number;
  finalLoss?: Summary;
  /** Forgetting (nats per token, bench/forgetting.ts) over the seeds that recorded it. */
  forgetting?: Summary;
}

/** Summary rows of a study's configurations, best first, values scaled to their display units. */
export function summaryRows(study: Study): SummaryRow[] {
  return study.groups.map((g: ConfigGroup) => ({
    config: g.label,
    model: String(g.runs[0].config.model),
    factors: FACTORS.map((f) => g.factors[f]),
    seeds: g.runs.length,
    metrics: study.metricNames.map((m) => {
      const v = g.metrics[m];
      const k = metricScale(m);
      return v ? { mean: v.mean * k, sd: v.sd * k, n: v.n } : undefined;
    }),
    trainMinutes: summarize(g.runs.map((r) => (r.timing?.trainSeconds ?? NaN) / 60)),
    memoryMiB: summarize(g.runs.map((r) => (r.memory?.peakTrainBytes ?? NaN) / MiB)),
    trainableParams: g.trainableParams,
    finalLoss: summarize(g.runs.map(finalLoss)),
    forgetting: g.forgetting,
  }));
}

/** A CSV field per RFC 4180 (quoted when it holds a comma, quote or line break); numbers to 12 significant digits. */
export function csvField(v: string | number | undefined | null): string {
  if (v === undefined || v === null || (typeof v === "number" && !Number.isFinite(v))) return "";
  // 12 significant digits: 0.65 * 100 reads 65, not 64.99999999999999.
  const s = typeof v === "number" ? String(Number(v.toPrecision(12))) : v;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Machine-friendly column name: `accuracy (%)` -> `accuracy_pct`, `train time (min)` -> `train_time_min`. */
function csvName(header: string): string {
  return header.replace(/\(%\)/g, "pct").replace(/[()]/g, "").trim().replace(/[^A-Za-z0-9@]+/g, "_")
    .replace(/_+$/, "");
}

/**
 * `summary.csv`: one row per configuration of every study; mean and SD over seeds in separate
 * columns, in the units the column names carry (`accuracy_pct_mean`, `train_time_min_mean`).
 */
export function summaryCsv(studies: readonly Study[]): string {
  const metricNames = [...new Set(studies.flatMap((s) => s.metricNames))];
  const header = [
    "study",
    "task",
    "dataset",
    "model",
    "config",
    ...FACTORS.map((f) => (f === "trainSize" ? "train_size" : f)),
    "seeds",
    ...metricNames.flatMap((m) => [`${csvName(metricHeader(m))}_mean`, `${csvName(metricHeader(m))}_sd`]),
    ...["trainTime", "memory", "finalLoss"].flatMap((k) => {
      const n = csvName(COST_HEADERS[k as keyof typeof COST_HEADERS]);
      return [`${n}_mean`, `${n}_sd`];
    }),
    "trainable_params",
    ...[`${csvName(COST_HEADERS.forgetting)}_mean`, `${csvName(COST_HEADERS.forgetting)}_sd`],
  ];
  const lines = [header.join(",")];
  for (const s of studies) {
    for (const r of summaryRows(s)) {
      const byName = new Map(s.metricNames.map((m, i) => [m, r.metrics[i]]));
      lines.push(
        [
          s.id,
          s.task,
          s.dataset,
          r.model,
          r.config,
          ...r.factors,
          r.seeds,
          ...metricNames.flatMap((m) => [byName.get(m)?.mean, byName.get(m)?.sd]),
          r.trainMinutes?.mean,
          r.trainMinutes?.sd,
          r.memoryMiB?.mean,
          r.memoryMiB?.sd,
          r.finalLoss?.mean,
          r.finalLoss?.sd,
          r.trainableParams,
          r.forgetting?.mean,
          r.forgetting?.sd,
        ].map(csvField).join(","),
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** Text with LaTeX's special characters escaped (`news_ru` -> `news\_ru`, `%` -> `\%`). */
export function texEscape(text: string): string {
  return text.replace(
    /[\\{}&%$#_~^]/g,
    (c) =>
      c === "\\"
        ? "\\textbackslash{}"
        : c === "~"
        ? "\\textasciitilde{}"
        : c === "^"
        ? "\\textasciicircum{}"
        : `\\${c}`,
  );
}

const texNum = (
  x: number | undefined,
  d: number,
) => (x === undefined || !Number.isFinite(x) ? "--" : x.toFixed(d));
const texMeanSd = (s: Summary | undefined, d: number) =>
  !s
    ? "--"
    : s.n > 1 && Number.isFinite(s.sd)
    ? `${texNum(s.mean, d)} $\\pm$ ${texNum(s.sd, d)}`
    : texNum(s.mean, d);

/**
 * `summary.tex`: one booktabs table per study (needs `\usepackage{booktabs}`): configuration,
 * seeds, the analysed metric and the other metrics as mean ± SD over seeds with units in the
 * headers, train time, memory, trainable parameters, final loss and forgetting.
 */
export function summaryTex(studies: readonly Study[]): string {
  const out: string[] = ["% peft-bench summary tables; needs \\usepackage{booktabs}"];
  for (const s of studies) {
    const rows = summaryRows(s);
    const heads = [
      "configuration",
      "seeds",
      ...s.metricNames.map(metricHeader),
      COST_HEADERS.trainTime,
      COST_HEADERS.memory,
      COST_HEADERS.params,
      COST_HEADERS.finalLoss,
      COST_HEADERS.forgetting,
    ];
    out.push(
      "",
      "\\begin{table}[t]",
      "\\centering",
      `\\caption{${texEscape(`${s.task} on ${s.dataset}`)}: mean $\\pm$ SD over seeds}`,
      `\\begin{tabular}{l${"r".repeat(heads.length - 1)}}`,
      "\\toprule",
      heads.map(texEscape).join(" & ") + " \\\\",
      "\\midrule",
      ...rows.map((r) =>
        [
          texEscape(r.config),
          String(r.seeds),
          ...r.metrics.map((m, i) => texMeanSd(m, metricDecimals(s.metricNames[i]))),
          texMeanSd(r.trainMinutes, 2),
          texMeanSd(r.memoryMiB, 1),
          r.trainableParams === undefined
            ? "--"
            : r.trainableParams.toLocaleString("en-US").replaceAll(",", "{,}"),
          texMeanSd(r.finalLoss, 3),
          texMeanSd(r.forgetting, 4),
        ].join(" & ") + " \\\\"
      ),
      "\\bottomrule",
      "\\end{tabular}",
      "\\end{table}",
    );
  }
  return out.join("\n") + "\n";
}
