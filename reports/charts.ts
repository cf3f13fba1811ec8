/**
 * Charts as Vega-Lite specs, rendered to SVG at build time (headless vega, no canvas: text
 * widths come from vega's character-count estimate, so labels may be spaced a little loosely).
 * A chart only exists when the data has what it needs (e.g. NF4 vs FP4 needs both).
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { RunRecord } from "../bench/record.ts";
import {
  type ConfigGroup,
  type Factor,
  FACTOR_LABELS,
  factorsOf,
  type Level,
  levelsOf,
  otherKey,
  sortLevels,
  type Study,
  valueOf,
} from "./data.ts";
import { paretoFrontier } from "./frontier.ts";
import { FORGETTING_UNIT, type ForgettingView } from "./forgetting.ts";
import type { StudyAnalysis } from "./analysis.ts";
import { isQuantized, quantFigures, type QuantView, quantView } from "./quant.ts";
import { tQuantile } from "./stats/paired.ts";
import { diagnosticsOf, type RunDiagnostics } from "./diagnostics.ts";

/** A chart: a Vega-Lite spec whose data is the named dataset "table", plus its rows. */
export interface Chart {
  /** File-safe id, unique within a page. */
  id: string;
  title: string;
  // deno-lint-ignore no-explicit-any
  spec: Record<string, any>;
  values: Record<string, unknown>[];
}

const MiB = 1024 * 1024;

/**
 * Renders charts to SVG. Compiled specs and their views are cached by spec (data excluded),
 * so the thousand run pages that share one chart shape pay the parse once and only swap data.
 */
export class ChartRenderer {
  #views = new Map<string, vega.View>();

  /** SVG text of a chart (site.ts checks every rendered file for markup that could run script). */
  async render(chart: Chart): Promise<string> {
    const key = JSON.stringify(chart.spec);
    let view = this.#views.get(key);
    if (!view) {
      const compiled = vl.compile({ ...chart.spec, data: { name: "table" } } as vl.TopLevelSpec).spec;
      view = new vega.View(vega.parse(compiled), { renderer: "none" });
      this.#views.set(key, view);
    }
    // Vega tags the row objects it ingests; charts build fresh rows, so no copy is needed.
    view.data("table", chart.values);
    // Vega escapes text and attributes; site.ts's findActiveContent guards the markup itself.
    return await view.toSVG();
  }

  /** Release every cached view. */
  finalize(): void {
    for (const v of this.#views.values()) v.finalize();
    this.#views.clear();
  }
}

const tooltip = (fields: string[]) => fields.map((f) => ({ field: f }));

/** Legend and axis labels are never cut: configuration names must be told apart (vega cuts at 160 px). */
const FULL_LABELS = 2000;

/**
 * An honest quality axis: the domain spans the plotted values (error bars included) with 5%
 * padding, from 0 when the values come within a quarter of their maximum of it; otherwise the
 * chart says where the axis starts, so a 2-point gap is not read as a 2-fold one.
 */
export function qualityAxis(values: readonly number[]): { domain: [number, number]; note: string } {
  const xs = values.filter(Number.isFinite);
  if (xs.length === 0) return { domain: [0, 1], note: "" };
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 0.05;
  const round = (x: number) => Number(x.toPrecision(3));
  if (lo >= 0 && lo <= 0.25 * hi) return { domain: [0, round(hi + pad)], note: "" };
  const start = round(lo - pad);
  return { domain: [start, round(hi + pad)], note: ` (y axis starts at ${start}, not 0)` };
}

/** Student-t 95% half-width of a mean of `xs` (0 for a single value: no interval). */
function halfWidth95(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return tQuantile(0.975, xs.length - 1) * sd / Math.sqrt(xs.length);
}

function qualityTitle(study: Study): string {
  return `${study.metric.name} (${study.metric.direction} is better)`;
}

/** Quality against a cost per configuration, with the Pareto frontier drawn and marked. */
function paretoChart(
  study: Study,
  id: string,
  costTitle: string,
  cost: (g: ConfigGroup) => number | undefined,
): Chart | null {
  const pts = study.groups.map((g) => ({ g, cost: cost(g) ?? NaN, quality: g.primary.mean }));
  const usable = pts.filter((p) => Number.isFinite(p.cost));
  if (usable.length < 2) return null;
  const front = new Set(paretoFrontier(usable, study.metric.direction));
  const values = usable.map((p, i) => ({
    config: p.g.label,
    cost: p.cost,
    quality: p.quality,
    frontier: front.has(i) ? "frontier" : "dominated",
    order: front.has(i) ? p.cost : null,
  }));
  const axis = qualityAxis(values.map((v) => v.quality));
  const y = {
    field: "quality",
    type: "quantitative",
    title: qualityTitle(study) + axis.note,
    scale: { domain: axis.domain, nice: false, zero: false },
  };
  const x = { field: "cost", type: "quantitative", title: costTitle, scale: { zero: false } };
  return {
    id,
    title: `${study.metric.name} vs ${costTitle} (Pareto frontier highlighted)`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: frontierLayers(x, y, ["config", "cost", "quality"]),
    },
  };
}

/**
 * Mean quality against a numeric-ish factor, one line per level of another (interaction plot),
 * with 95% t error bars over the runs in each cell (other factors and seeds).
 */
function interactionChart(study: Study, id: string, xf: Factor, colorF: Factor): Chart | null {
  const xs = levelsOf(study.ok, xf);
  if (xs.length < 2) return null;
  const cells = new Map<string, { x: string | number; c: Level; vals: number[] }>();
  for (const r of study.ok) {
    const f = factorsOf(r.config);
    if (f[xf] === null) continue;
    const k = JSON.stringify([f[xf], f[colorF]]);
    const cell = cells.get(k) ?? { x: f[xf]!, c: f[colorF], vals: [] };
    cell.vals.push(valueOf(r, study.metric)!);
    cells.set(k, cell);
  }
  const numeric = xs.every((l) => typeof l === "number");
  const series = sortLevels([...new Set([...cells.values()].map((c) => c.c))]).map((l) =>
    l === null ? "n/a" : String(l)
  );
  const values = [...cells.values()].map((c) => {
    const quality = c.vals.reduce((a, b) => a + b, 0) / c.vals.length;
    const h = halfWidth95(c.vals);
    return {
      x: c.x,
      series: c.c === null ? "n/a" : String(c.c),
      quality,
      lo: quality - h,
      hi: quality + h,
      runs: c.vals.length,
    };
  });
  const axis = qualityAxis(values.flatMap((v) => [v.lo, v.hi]));
  const x = numeric
    ? { field: "x", type: "quantitative", title: FACTOR_LABELS[xf], scale: { type: "log", base: 2 } }
    : { field: "x", type: "ordinal", title: FACTOR_LABELS[xf], sort: xs.map(String) };
  const y = {
    field: "quality",
    type: "quantitative",
    title: qualityTitle(study) + axis.note,
    scale: { domain: axis.domain, nice: false, zero: false },
  };
  const color = {
    field: "series",
    type: "nominal",
    title: FACTOR_LABELS[colorF],
    sort: series,
    legend: { labelLimit: FULL_LABELS },
  };
  return {
    id,
    title: `${study.metric.name} vs ${FACTOR_LABELS[xf]} per ${
      FACTOR_LABELS[colorF]
    } (mean over other factors and seeds, bars: 95% t CI)${axis.note}`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: [
        {
          mark: { type: "errorbar", ticks: true },
          encoding: { x, y: { ...y, field: "lo", title: y.title }, y2: { field: "hi" }, color },
        },
        {
          mark: { type: "line", point: true },
          encoding: { x, y, color, tooltip: tooltip(["series", "x", "quality", "lo", "hi", "runs"]) },
        },
      ],
    },
  };
}

/** NF4 against FP4 for runs equal in everything else (seed included), with the y = x line. */
function nf4VsFp4(study: Study, id: string): Chart | null {
  const key = (r: RunRecord) => {
    const f = factorsOf(r.config);
    return JSON.stringify([f.method, f.targets, f.rank, f.trainSize, otherKey(r.config), r.config.seed]);
  };
  const nf4 = new Map<string, RunRecord>();
  const fp4 = new Map<string, RunRecord>();
  for (const r of study.ok) {
    const q = r.config.quant?.scheme;
    if (q === "nf4") nf4.set(key(r) + String(r.config.quant.doubleQuant ?? false), r);
    if (q === "fp4") fp4.set(key(r) + String(r.config.quant.doubleQuant ?? false), r);
  }
  const values = [...nf4].filter(([k]) => fp4.has(k)).map(([k, r]) => ({
    config: r.name.replace(/\bnf4\b/, "4-bit"),
    method: String(r.config.method),
    nf4: valueOf(r, study.metric)!,
    fp4: valueOf(fp4.get(k)!, study.metric)!,
  }));
  if (values.length === 0) return null;
  const all = values.flatMap((v) => [v.nf4, v.fp4]);
  const lo = Math.min(...all), hi = Math.max(...all);
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.01 || 0.01;
  const domain = [lo - pad, hi + pad];
  return {
    id,
    title:
      `Paired NF4 vs FP4: ${study.metric.name} of runs equal in all else (${values.length} pairs; above the line NF4 is higher)`,
    values,
    spec: {
      width: 300,
      height: 300,
      layer: [
        {
          // The diagonal: a two-point line built from the domain, not from data rows.
          data: { values: [{ v: domain[0] }, { v: domain[1] }] },
          mark: { type: "line", color: "#9ca3af", strokeDash: [4, 4] },
          encoding: { x: { field: "v", type: "quantitative" }, y: { field: "v", type: "quantitative" } },
        },
        {
          mark: { type: "point", filled: true },
          encoding: {
            x: {
              field: "fp4",
              type: "quantitative",
              title: `${study.metric.name} with FP4`,
              scale: { domain },
            },
            y: {
              field: "nf4",
              type: "quantitative",
              title: `${study.metric.name} with NF4`,
              scale: { domain },
            },
            color: { field: "method", type: "nominal" },
            tooltip: tooltip(["config", "nf4", "fp4"]),
          },
        },
      ],
    },
  };
}

/** Box plot of run-level quality per level of a factor. */
function boxplot(study: Study, factor: Factor): Chart | null {
  const levels = levelsOf(study.ok, factor);
  if (levels.length < 2) return null;
  const values = study.ok.filter((r) => factorsOf(r.config)[factor] !== null).map((r) => ({
    level: String(factorsOf(r.config)[factor]),
    quality: valueOf(r, study.metric)!,
  }));
  const axis = qualityAxis(values.map((v) => v.quality));
  return {
    id: `box-${factor}`,
    title: `${study.metric.name} per ${FACTOR_LABELS[factor]} (every run)${axis.note}`,
    values,
    spec: {
      width: Math.max(160, 60 * levels.length),
      height: 220,
      mark: { type: "boxplot", extent: 1.5 },
      encoding: {
        x: { field: "level", type: "nominal", title: FACTOR_LABELS[factor], sort: levels.map(String) },
        y: {
          field: "quality",
          type: "quantitative",
          title: qualityTitle(study) + axis.note,
          scale: { domain: axis.domain, nice: false, zero: false },
        },
      },
    },
  };
}

/** Mean training loss per configuration; the 8 best named, the rest grey. */
function lossCurves(study: Study): Chart | null {
  const named = new Set(study.groups.slice(0, 8).map((g) => g.key));
  const values: Record<string, unknown>[] = [];
  for (const g of study.groups) {
    const bySteps = new Map<number, number[]>();
    for (const r of g.runs) {
      for (const p of r.curve ?? []) {
        if (Number.isFinite(p.loss)) {
          (bySteps.get(p.step) ?? bySteps.set(p.step, []).get(p.step)!).push(p.loss);
        }
      }
    }
    for (const [step, ls] of bySteps) {
      values.push({
        step,
        loss: ls.reduce((s, x) => s + x, 0) / ls.length,
        config: named.has(g.key) ? g.label : "other",
        key: g.key,
      });
    }
  }
  if (values.length < 2) return null;
  return {
    id: "loss",
    title: `Training loss (mean over seeds; the ${named.size} best configurations in colour)`,
    values,
    spec: {
      width: 480,
      height: 260,
      mark: { type: "line", strokeWidth: 1.5 },
      encoding: {
        x: { field: "step", type: "quantitative" },
        y: { field: "loss", type: "quantitative", scale: { zero: false } },
        color: {
          field: "config",
          type: "nominal",
          title: "configuration",
          legend: { labelLimit: FULL_LABELS },
        },
        detail: { field: "key", type: "nominal" },
        opacity: { condition: { test: "datum.config === 'other'", value: 0.25 }, value: 1 },
      },
    },
  };
}

const PARTS = ["frozenWeights", "trainable", "optimizerState", "activations"] as const;

function memoryRows(label: string, runs: readonly RunRecord[]) {
  return PARTS.map((part, order) => {
    const xs = runs.map((r) => r.memory?.breakdown?.[part]).filter((v): v is number =>
      typeof v === "number" && Number.isFinite(v)
    );
    return xs.length
      ? { config: label, part, order, mib: xs.reduce((s, x) => s + x, 0) / xs.length / MiB }
      : null;
  }).filter((v) => v !== null);
}

function memorySpec() {
  return {
    width: 420,
    height: { step: 16 },
    mark: "bar",
    encoding: {
      y: { field: "config", type: "nominal", title: null, sort: null, axis: { labelLimit: FULL_LABELS } },
      x: { field: "mib", type: "quantitative", title: "MiB", stack: "zero" },
      color: { field: "part", type: "nominal", title: "memory", sort: [...PARTS] },
      order: { field: "order", type: "quantitative" },
      tooltip: tooltip(["config", "part", "mib"]),
    },
  };
}

/** Stacked memory breakdown per configuration (mean over seeds). */
function memoryChart(study: Study): Chart | null {
  const values = study.groups.flatMap((g) => memoryRows(g.label, g.runs));
  if (!values.length) return null;
  return {
    id: "memory",
    title: "Memory breakdown per configuration (stacked, MiB)",
    values,
    spec: memorySpec(),
  };
}

/** Inference latency p50 (bar) and p95 (tick) per configuration. */
function latencyChart(study: Study): Chart | null {
  const values = study.groups.map((g) => {
    const p50 = g.runs.map((r) => r.timing?.inferLatencyMs?.p50).filter((v): v is number =>
      Number.isFinite(v)
    );
    const p95 = g.runs.map((r) => r.timing?.inferLatencyMs?.p95).filter((v): v is number =>
      Number.isFinite(v)
    );
    return p50.length
      ? {
        config: g.label,
        p50: p50.reduce((s, x) => s + x, 0) / p50.length,
        p95: p95.length ? p95.reduce((s, x) => s + x, 0) / p95.length : null,
      }
      : null;
  }).filter((v) => v !== null);
  if (!values.length) return null;
  return {
    id: "latency",
    title: "Inference latency per item: p50 (bar) and p95 (tick), ms, mean over seeds",
    values,
    spec: {
      width: 420,
      height: { step: 16 },
      encoding: {
        y: { field: "config", type: "nominal", title: null, sort: null, axis: { labelLimit: FULL_LABELS } },
      },
      layer: [
        {
          mark: "bar",
          encoding: {
            x: { field: "p50", type: "quantitative", title: "ms" },
            tooltip: tooltip(["config", "p50", "p95"]),
          },
        },
        {
          mark: { type: "tick", color: "#d62728", thickness: 2 },
          encoding: { x: { field: "p95", type: "quantitative" } },
        },
      ],
    },
  };
}

/**
 * Quality gain against forgetting, one point per configuration, with the Pareto frontier (least
 * forgetting for a gain) drawn as a staircase and marked: gain over the frozen baseline (paired by
 * seed, the difference unit of the baseline table) when the study has a frozen run, else the metric.
 */
function forgettingChart(study: Study, view: ForgettingView | null): Chart | null {
  if (!view || view.points.length < 2 || view.texts.length > 1) return null;
  const u = study.metric;
  const values = view.points.map((p) => ({
    config: p.group.label,
    forgetting: p.forgetting.mean,
    gain: p.gain,
    seeds: p.forgetting.n,
    frontier: p.frontier ? "frontier" : "dominated",
    order: p.frontier ? p.forgetting.mean : null,
  }));
  const axis = view.relative ? { domain: undefined, note: "" } : qualityAxis(values.map((v) => v.gain));
  const y = {
    field: "gain",
    type: "quantitative",
    title: view.relative
      ? `${u.name} minus frozen's (${u.unit}; ${u.direction} is better)`
      : qualityTitle(study) + axis.note,
    scale: axis.domain ? { domain: axis.domain, nice: false, zero: false } : { zero: false },
  };
  const x = {
    field: "forgetting",
    type: "quantitative",
    title: `forgetting on ${view.texts[0] ?? "generic text"} (${FORGETTING_UNIT}; lower forgets less)`,
    scale: { zero: false },
  };
  return {
    id: "forgetting",
    title: `${view.relative ? `${u.name} gain over frozen` : u.name} vs forgetting, one point per ` +
      `configuration (mean over seeds; Pareto frontier highlighted)${
        view.unpaired.length
          ? `; ${view.unpaired.length} configuration(s) without a frozen run to pair with left off`
          : ""
      }`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: frontierLayers(x, y, ["config", "forgetting", "gain", "seeds"]),
    },
  };
}

/**
 * The layers of a Pareto chart: the frontier as a red step line (points carry `frontier` =
 * "frontier" | "dominated" and the frontier's `order`), every point coloured by that flag.
 */
function frontierLayers(x: unknown, y: unknown, tooltipFields: string[]): unknown[] {
  return [
    {
      transform: [{ filter: "datum.frontier === 'frontier'" }],
      mark: { type: "line", interpolate: "step-after", color: "#d62728" },
      encoding: { x, y, order: { field: "order", type: "quantitative" } },
    },
    {
      mark: { type: "point", filled: true, size: 60 },
      encoding: {
        x,
        y,
        color: {
          field: "frontier",
          type: "nominal",
          scale: { domain: ["frontier", "dominated"], range: ["#d62728", "#9ca3af"] },
          title: null,
        },
        tooltip: tooltip(tooltipFields),
      },
    },
  ];
}

/** Colour of scheme configurations, in order of bits. */
function quantColor(view: QuantView) {
  return {
    field: "scheme",
    type: "nominal",
    title: "quant",
    sort: view.points.map((p) => p.scheme),
    legend: { labelLimit: FULL_LABELS },
  };
}

/** x axis of stored bits per parameter, log 2 (2, 4, 8 and 32 bits spread evenly), ticks at the schemes' bits. */
function bitsAxis(values: readonly { bits: number }[]) {
  const bs = values.map((v) => v.bits);
  const ticks = [...new Set(bs.map((b) => Number(b.toPrecision(3))))].sort((a, b) => a - b);
  return {
    field: "bits",
    type: "quantitative",
    title: "stored bits per parameter (codes and constants; log scale)",
    scale: { type: "log", base: 2, domain: [Math.min(...bs) / 1.15, Math.max(...bs) * 1.15], nice: false },
    axis: { values: ticks, format: "~g" },
  };
}

/** What a point of the quantization charts averages. */
function quantCaption(view: QuantView): string {
  return view.matched
    ? `one point per scheme configuration, averaged over the ${view.shared} configuration(s) every scheme was run with, ` +
      `per seed, then over seeds (bars: 95% t interval over seeds)`
    : `one point per scheme configuration; the schemes share no configuration, so each point averages its own ` +
      `runs and the points differ in more than the scheme (bars: 95% t interval over seeds)`;
}

/** Quality against the stored bits per parameter of the frozen base, one point per scheme configuration. */
function quantQualityChart(study: Study, view: QuantView | null): Chart | null {
  if (!view || view.points.length < 2) return null;
  const values = view.points.map((p) => ({
    scheme: p.scheme,
    bits: p.bits.mean,
    quality: p.quality.mean,
    lo: p.quality.mean - p.quality.half,
    hi: p.quality.mean + p.quality.half,
    seeds: p.quality.n,
    configs: p.configs,
  }));
  const axis = qualityAxis(values.flatMap((v) => [v.lo, v.hi]));
  const x = bitsAxis(values);
  const y = {
    field: "quality",
    type: "quantitative",
    title: qualityTitle(study) + axis.note,
    scale: { domain: axis.domain, nice: false, zero: false },
  };
  const color = quantColor(view);
  return {
    id: "quant-bits-quality",
    title: `${study.metric.name} vs stored bits per parameter of the frozen base: ${
      quantCaption(view)
    }${axis.note}`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: [
        {
          mark: { type: "errorbar", ticks: true },
          encoding: { x, y: { ...y, field: "lo", title: y.title }, y2: { field: "hi" }, color },
        },
        {
          mark: { type: "point", filled: true, size: 70 },
          encoding: {
            x,
            y,
            color,
            tooltip: tooltip(["scheme", "bits", "quality", "lo", "hi", "seeds", "configs"]),
          },
        },
      ],
    },
  };
}

/**
 * Mean quantization error over the base's layers against stored bits, one point per quantized
 * scheme configuration (bars of zero width where the error does not depend on the seed, as for
 * round-to-nearest schemes on a fixed calibration batch).
 */
function quantErrorChart(view: QuantView | null): Chart | null {
  const pts = view?.points.filter((p) => p.error !== undefined) ?? [];
  if (!view || pts.length === 0) return null;
  const what = view.errorKind === "output"
    ? "mean output relative error on the calibration batch"
    : "mean relative weight error ||W − Ŵ||/||W||";
  const values = pts.map((p) => ({
    scheme: p.scheme,
    bits: p.bits.mean,
    error: p.error!.mean,
    lo: Math.max(0, p.error!.mean - p.error!.half),
    hi: p.error!.mean + p.error!.half,
    seeds: p.error!.n,
  }));
  const x = bitsAxis(values);
  const y = { field: "error", type: "quantitative", title: `${what} (log scale)`, scale: { type: "log" } };
  const color = quantColor(view);
  return {
    id: "quant-bits-error",
    title: `Quantization error vs stored bits per parameter: ${what} over the base's layers; ${
      quantCaption(view)
    }`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: [
        {
          transform: [{ filter: "datum.lo > 0" }],
          mark: { type: "errorbar", ticks: true },
          encoding: { x, y: { ...y, field: "lo", title: y.title }, y2: { field: "hi" }, color },
        },
        {
          mark: { type: "point", filled: true, size: 70 },
          encoding: { x, y, color, tooltip: tooltip(["scheme", "bits", "error", "lo", "hi", "seeds"]) },
        },
      ],
    },
  };
}

/** A run's quantization error per layer: relative weight error and output error on the calibration batch. */
function quantLayerChart(run: RunRecord): Chart | null {
  const q = quantFigures(run);
  if (!q || !isQuantized(run) || q.layers.length === 0) return null;
  const values = q.layers.flatMap((l, order) =>
    [["weight ||W − Ŵ||/||W||", l.relativeError], ["output on the calibration batch", l.outputRelativeError]]
      .filter(([, e]) => typeof e === "number" && (e as number) > 0)
      .map(([kind, error]) => ({ layer: l.name, order, kind, error }))
  );
  if (values.length === 0) return null;
  return {
    id: "quant-layers",
    title: `Relative quantization error per layer (${q.scheme}, log scale)`,
    values,
    spec: {
      width: Math.max(240, 14 * q.layers.length),
      height: 220,
      mark: { type: "point", filled: true },
      encoding: {
        x: {
          field: "layer",
          type: "nominal",
          title: null,
          sort: q.layers.map((l) => l.name),
          axis: { labelAngle: -60, labelLimit: FULL_LABELS },
        },
        y: { field: "error", type: "quantitative", title: "relative error", scale: { type: "log" } },
        color: { field: "kind", type: "nominal", title: null, legend: { labelLimit: FULL_LABELS } },
        tooltip: tooltip(["layer", "kind", "error"]),
      },
    },
  };
}

/**
 * Every chart a study's data supports, in page order. `analysis` adds the charts that need the
 * statistics (gain over frozen against forgetting).
 */
export function studyCharts(study: Study, analysis?: StudyAnalysis): Chart[] {
  const charts = [
    paretoChart(
      study,
      "pareto-memory",
      "peak train memory (MiB)",
      (g) => g.peakTrainBytes && g.peakTrainBytes.mean / MiB,
    ),
    paretoChart(study, "pareto-time", "train time (s)", (g) => g.trainSeconds?.mean),
    forgettingChart(study, analysis?.forgetting ?? null),
    interactionChart(study, "rank-by-targets", "rank", "targets"),
    interactionChart(study, "trainsize-by-method", "trainSize", "method"),
    nf4VsFp4(study, "nf4-vs-fp4"),
    quantQualityChart(study, quantView(study)),
    quantErrorChart(quantView(study)),
    ...study.varying.map((f) => boxplot(study, f)),
    lossCurves(study),
    memoryChart(study),
    latencyChart(study),
    effectiveRankChart(study),
    entanglementChart(study),
  ];
  return charts.filter((c): c is Chart => c !== null);
}

/** Charts of one run's page: its curves, its memory breakdown and its diagnostics. */
export function runCharts(run: RunRecord): Chart[] {
  const out: Chart[] = [];
  const curve: Record<string, unknown>[] = [];
  for (const p of run.curve ?? []) {
    if (Number.isFinite(p.loss)) curve.push({ step: p.step, value: p.loss, series: "train loss" });
    if (typeof p.evalMetric === "number" && Number.isFinite(p.evalMetric)) {
      curve.push({ step: p.step, value: p.evalMetric, series: "eval metric" });
    }
  }
  if (curve.length) {
    out.push({
      id: "curve",
      title: "Training loss and eval metric by step",
      values: curve,
      spec: {
        width: 420,
        height: 220,
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "step", type: "quantitative" },
          y: { field: "value", type: "quantitative", scale: { zero: false } },
          color: {
            field: "series",
            type: "nominal",
            title: null,
            scale: { domain: ["train loss", "eval metric"] },
          },
        },
      },
    });
  }
  const mem = memoryRows("this run", [run]);
  if (mem.length) {
    out.push({ id: "memory", title: "Memory breakdown (MiB)", values: mem, spec: memorySpec() });
  }
  const quant = quantLayerChart(run);
  if (quant) out.push(quant);
  out.push(...diagnosticsRunCharts(run));
  return out;
}

/** Largest s_i / s_1 treated as numerically zero: float32 updates carry round-off near 1e-7 * s_1. */
const SPECTRUM_FLOOR = 1e-6;

/** The module part of a layer name (`layers.3.attn.q` -> `attn.q`), which colours spectra. */
function moduleOf(layer: string): string {
  return layer.replace(/^layers\.\d+\./, "");
}

/** Singular values of each adapted layer's update (log scale), with the nominal rank marked. */
function spectrumChart(d: RunDiagnostics): Chart | null {
  const values: Record<string, unknown>[] = [];
  for (const l of d.layers) {
    const top = l.singularValues[0];
    if (!(top > 0)) continue;
    l.singularValues.forEach((s, i) => {
      if (s > top * SPECTRUM_FLOOR) values.push({ index: i + 1, s, layer: l.name, module: moduleOf(l.name) });
    });
  }
  if (values.length === 0) return null;
  const ranks = [...new Set(d.layers.map((l) => l.nominalRank))];
  // Points help read a short spectrum (LoRA ranks) and only clutter a long one (full fine-tuning).
  const longest = Math.max(...d.layers.map((l) => l.singularValues.length));
  const layers: Record<string, unknown>[] = [{
    mark: { type: "line", point: longest <= 16, strokeWidth: 1.2 },
    encoding: {
      x: { field: "index", type: "quantitative", title: "index i", axis: { tickMinStep: 1, format: "d" } },
      y: { field: "s", type: "quantitative", title: "singular value s_i", scale: { type: "log" } },
      color: { field: "module", type: "nominal", title: "module" },
      detail: { field: "layer", type: "nominal" },
      tooltip: tooltip(["layer", "index", "s"]),
    },
  }];
  if (ranks.length === 1) {
    // One nominal rank for every layer: a rule at i = r shows where the spectrum may end.
    layers.push({
      data: { values: [{ r: ranks[0] }] },
      mark: { type: "rule", color: "#9ca3af", strokeDash: [4, 4] },
      encoding: { x: { field: "r", type: "quantitative" } },
    });
  }
  return {
    id: "diag-spectrum",
    title:
      `Singular values of each adapted layer's update ΔW (log scale; values below ${SPECTRUM_FLOOR}·s₁ are ` +
      `round-off and left out${ranks.length === 1 ? `; dashed: nominal rank ${ranks[0]}` : ""})`,
    values,
    spec: { width: 420, height: 240, layer: layers },
  };
}

/** Attention spectral entropy S(l) of the frozen and the adapted model, with fits a + b ln l. */
function attentionChart(d: RunDiagnostics): Chart | null {
  const a = d.attention;
  if (!a) return null;
  const values: Record<string, unknown>[] = [];
  for (const [series, c] of [["frozen", a.frozen], ["adapted", a.adapted]] as const) {
    c.lengths.forEach((l, i) => {
      values.push({ length: l, entropy: c.entropy[i], fit: c.fit.a + c.fit.b * Math.log(l), series });
    });
  }
  // Ticks at the probed lengths themselves; both probes use the same ones unless a run is odd.
  const ticks = [...new Set([...a.frozen.lengths, ...a.adapted.lengths])].sort((p, q) => p - q);
  const x = {
    field: "length",
    type: "quantitative",
    title: "sequence length l (log scale)",
    scale: { type: "log", base: 2, nice: false },
    axis: { values: ticks, format: "d" },
  };
  const series = { domain: ["frozen", "adapted"] };
  const color = { field: "series", type: "nominal", title: null, scale: series };
  const f = (v: number) => Number(v.toPrecision(3));
  return {
    id: "diag-attention",
    title:
      `Attention spectral entropy S(l), mean over layers, heads and texts (points), and fits a + b ln l ` +
      `(lines): b frozen ${f(a.frozen.fit.b)}, adapted ${f(a.adapted.fit.b)}, Δb ${f(a.deltaB)}`,
    values,
    spec: {
      width: 420,
      height: 240,
      layer: [
        {
          mark: { type: "point", filled: true, size: 50 },
          encoding: {
            x,
            y: { field: "entropy", type: "quantitative", title: "S(l) (nats)", scale: { zero: false } },
            color,
            shape: { field: "series", type: "nominal", title: null, scale: series },
            tooltip: tooltip(["series", "length", "entropy", "fit"]),
          },
        },
        {
          mark: { type: "line", strokeWidth: 1.5 },
          encoding: { x, y: { field: "fit", type: "quantitative" }, color },
        },
      ],
    },
  };
}

/** Charts of a run's diagnostics: update spectra and attention entropy, where recorded. */
export function diagnosticsRunCharts(run: RunRecord): Chart[] {
  const d = diagnosticsOf(run);
  if (!d) return [];
  return [spectrumChart(d), attentionChart(d)].filter((c): c is Chart => c !== null);
}

const meanOf = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Effective rank (mean over layers) against nominal rank, one point per run, with y = x. */
function effectiveRankChart(study: Study): Chart | null {
  const values: Record<string, unknown>[] = [];
  for (const g of study.groups) {
    for (const r of g.runs) {
      const d = diagnosticsOf(r);
      if (!d || d.layers.length === 0) continue;
      values.push({
        nominal: meanOf(d.layers.map((l) => l.nominalRank)),
        effective: meanOf(d.layers.map((l) => l.effectiveRank)),
        method: String(r.config.method),
        config: g.label,
        seed: r.config.seed,
      });
    }
  }
  if (values.length < 2) return null;
  const xs = values.flatMap((v) => [v.nominal as number, v.effective as number]).filter((v) => v > 0);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const scale = { type: "log", base: 2, domain: [lo / 1.2, hi * 1.2] };
  return {
    id: "diag-erank",
    title: "Effective rank of the update ΔW (mean over adapted layers) vs nominal rank, one point per run " +
      "(dashed: y = x; methods without a rank use min(out, in))",
    values,
    spec: {
      width: 360,
      height: 280,
      layer: [
        {
          data: { values: [{ v: lo }, { v: hi }] },
          mark: { type: "line", color: "#9ca3af", strokeDash: [4, 4] },
          encoding: { x: { field: "v", type: "quantitative" }, y: { field: "v", type: "quantitative" } },
        },
        {
          mark: { type: "point", filled: true, size: 60 },
          encoding: {
            x: { field: "nominal", type: "quantitative", title: "nominal rank", scale },
            y: { field: "effective", type: "quantitative", title: "effective rank", scale },
            color: { field: "method", type: "nominal" },
            tooltip: tooltip(["config", "seed", "nominal", "effective"]),
          },
        },
      ],
    },
  };
}

/**
 * Entanglement profile S(l) per configuration, mean over its runs' layers. Only layers of the
 * study's most common shape are averaged (profiles of other shapes have other cuts), and the
 * maximum ln(min(left, right)) of each cut is drawn dashed.
 */
function entanglementChart(study: Study): Chart | null {
  const named = new Set(study.groups.slice(0, 8).map((g) => g.key));
  const byChain = new Map<
    string,
    { rows: number; cols: number; sites: number[]; bound: number[]; n: number }
  >();
  const profiles: { g: ConfigGroup; chain: string; entropy: number[] }[] = [];
  for (const g of study.groups) {
    for (const r of g.runs) {
      for (const l of diagnosticsOf(r)?.layers ?? []) {
        if (!l.entanglement) continue;
        const chain = JSON.stringify([l.rows, l.cols, l.entanglement.sites]);
        const c = byChain.get(chain) ??
          { rows: l.rows, cols: l.cols, sites: l.entanglement.sites, bound: l.entanglement.bound, n: 0 };
        c.n++;
        byChain.set(chain, c);
        profiles.push({ g, chain, entropy: l.entanglement.entropy });
      }
    }
  }
  if (profiles.length === 0) return null;
  const [chain, shape] = [...byChain].sort((a, b) => b[1].n - a[1].n)[0];
  const sums = new Map<ConfigGroup, { sum: number[]; n: number }>();
  for (const p of profiles) {
    if (p.chain !== chain) continue;
    const s = sums.get(p.g) ?? { sum: p.entropy.map(() => 0), n: 0 };
    p.entropy.forEach((v, i) => (s.sum[i] += v));
    s.n++;
    sums.set(p.g, s);
  }
  const values: Record<string, unknown>[] = [];
  for (const [g, s] of sums) {
    s.sum.forEach((v, i) => {
      values.push({
        cut: i + 1,
        entropy: v / s.n,
        config: named.has(g.key) ? g.label : "other",
        key: g.key,
        layers: s.n,
      });
    });
  }
  const bound = shape.bound.map((b, i) => ({ cut: i + 1, bound: b }));
  // The cut between row and column sites: there S(l) is the entropy of dW's own spectrum (<= ln rank).
  let middle = 0;
  for (let p = 1; middle < shape.sites.length && p < shape.rows; middle++) p *= shape.sites[middle];
  const x = { field: "cut", type: "quantitative", title: "cut position l (after site l)" };
  return {
    id: "diag-entanglement",
    title: `Entanglement profile S(l) of the update ΔW, mean over ${shape.rows}×${shape.cols} layers per ` +
      `configuration (dashed: maximum ln min(left, right); dotted: the rows | columns cut, where S = entropy of ΔW's spectrum)`,
    values,
    spec: {
      width: 420,
      height: 260,
      layer: [
        {
          data: { values: bound },
          mark: { type: "line", color: "#9ca3af", strokeDash: [4, 4] },
          encoding: { x, y: { field: "bound", type: "quantitative" } },
        },
        {
          data: { values: [{ cut: middle }] },
          mark: { type: "rule", color: "#9ca3af", strokeDash: [1, 3] },
          encoding: { x: { field: "cut", type: "quantitative" } },
        },
        {
          mark: { type: "line", point: true, strokeWidth: 1.5 },
          encoding: {
            x,
            y: { field: "entropy", type: "quantitative", title: "S(l) (nats)" },
            color: {
              field: "config",
              type: "nominal",
              title: "configuration",
              legend: { labelLimit: FULL_LABELS },
            },
            detail: { field: "key", type: "nominal" },
            opacity: { condition: { test: "datum.config === 'other'", value: 0.25 }, value: 1 },
            tooltip: tooltip(["config", "cut", "entropy", "layers"]),
          },
        },
      ],
    },
  };
}
