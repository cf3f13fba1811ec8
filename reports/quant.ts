/**
 * Quantization in the report (issue 19): what a run record keeps about its frozen base's
 * quantization (`record.quant`, written by bench/frozen_base.ts quantSummary and, per layer, by
 * methods/quant/report.ts quantLayerReport plus the output errors of bench/run.ts) read
 * defensively, since records come from older writers and other machines; per scheme configuration
 * the stored bits per parameter against quality and against the mean error, with seed intervals;
 * and a run's per-layer table.
 * @module
 */
import { canonicalJson, type RunRecord } from "../bench/record.ts";
import { type Study, valueOf } from "./data.ts";
import { tQuantile } from "./stats/paired.ts";

/** One quantized layer as the record keeps it (every field may be missing in older records). */
export interface QuantLayerFigures {
  name: string;
  scheme?: string;
  bitsPerParam?: number;
  /** ||W - Ŵ||_F / ||W||_F. */
  relativeError?: number;
  /** ||X W^T - X Ŵ^T||_F / ||X W^T||_F on the fixed calibration batch. */
  outputRelativeError?: number;
  calibrationRows?: number;
  quantizeMs?: number;
  outlierShare?: number;
}

/** A run's quantization figures. */
export interface QuantFigures {
  scheme: string;
  /** Stored bits per parameter of the decoder's linear weights (codes and constants). */
  bitsPerParam?: number;
  meanRelativeError?: number;
  maxRelativeError?: number;
  meanOutputRelativeError?: number;
  outlierShare?: number;
  calibrationRows?: number;
  quantizeMs?: number;
  layers: QuantLayerFigures[];
}

const num = (v: unknown): number | undefined => typeof v === "number" && Number.isFinite(v) ? v : undefined;

/** The quantization figures of a run, or null when it recorded none (older records). */
export function quantFigures(run: RunRecord): QuantFigures | null {
  const q = run.quant as unknown as Record<string, unknown> | undefined;
  if (!q || typeof q !== "object") return null;
  const raw = q.layers && typeof q.layers === "object" ? q.layers as Record<string, unknown> : {};
  const layers = Object.entries(raw).flatMap(([name, l]): QuantLayerFigures[] => {
    if (!l || typeof l !== "object") return [];
    const o = l as Record<string, unknown>;
    return [{
      name,
      scheme: typeof o.scheme === "string" ? o.scheme : undefined,
      bitsPerParam: num(o.bitsPerParam),
      relativeError: num(o.relativeError),
      outputRelativeError: num(o.outputRelativeError),
      calibrationRows: num(o.calibrationRows),
      quantizeMs: num(o.quantizeMs),
      outlierShare: num(o.outlierShare),
    }];
  });
  return {
    scheme: typeof q.scheme === "string" ? q.scheme : String(run.config.quant?.scheme ?? "none"),
    bitsPerParam: num(q.bitsPerParam),
    meanRelativeError: num(q.meanRelativeError),
    maxRelativeError: num(q.maxRelativeError),
    meanOutputRelativeError: num(q.meanOutputRelativeError),
    outlierShare: num(q.outlierShare),
    calibrationRows: num(q.calibrationRows),
    quantizeMs: num(q.quantizeMs),
    layers,
  };
}

/** Whether a run's base was quantized (a scheme other than none). */
export function isQuantized(run: RunRecord): boolean {
  return String(run.config.quant?.scheme ?? "none") !== "none";
}

/** Stored bits per frozen parameter of a run: the decoder linears' (record.quant), else the whole frozen base's. */
export function storedBits(run: RunRecord): number | undefined {
  return quantFigures(run)?.bitsPerParam ?? num(run.size?.bitsPerFrozenParam);
}

/** Mean and Student-t 95% half-width over seeds (half-width 0 for one value). */
export interface MeanInterval {
  mean: number;
  half: number;
  n: number;
}

/** Mean of `xs` with its 95% t half-width. */
export function meanInterval(xs: readonly number[]): MeanInterval {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return { mean, half: 0, n };
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return { mean, half: tQuantile(0.975, n - 1) * sd / Math.sqrt(n), n };
}

/**
 * A scheme configuration's name: the quant level as the factor names it (`nf4+dq`) plus the
 * options given beyond it (`gptq blockSize=128 actOrder=true`).
 */
export function schemeLabel(run: RunRecord): string {
  const { scheme, doubleQuant, ...rest } = run.config.quant ?? { scheme: "none" };
  const opts = Object.entries(rest).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
  return [String(scheme) + (doubleQuant ? "+dq" : ""), ...opts.map(([k, v]) => `${k}=${v}`)].join(" ");
}

/** Everything of a config but its seed and quantization: what a scheme configuration is crossed with. */
function restKey(run: RunRecord): string {
  const { seed: _s, quant: _q, loftq: _l, ...rest } = run.config;
  return canonicalJson(rest);
}

/** One scheme configuration on the bits plane. */
export interface QuantPoint {
  /** Scheme and options ({@link schemeLabel}). */
  scheme: string;
  /** Whether the base was quantized (false: the full-precision reference). */
  quantized: boolean;
  /** Configurations (all else than the scheme) averaged into the point. */
  configs: number;
  /** Stored bits per parameter over the runs. */
  bits: MeanInterval;
  /** Primary metric (raw): per seed the mean over the configurations, then mean and t interval over seeds. */
  quality: MeanInterval;
  /** Mean error over layers, the same way; absent for the reference or without figures. */
  error?: MeanInterval;
}

/** A study's quantization points and which error they carry. */
export interface QuantView {
  points: QuantPoint[];
  /** Output error on the calibration batch when every quantized run has it, else the weight error. */
  errorKind: "output" | "weight";
  /** Whether the points average the same configurations (everything but the scheme), so they compare like with like. */
  matched: boolean;
  /** Configurations per point when matched. */
  shared: number;
}

/**
 * One point per scheme configuration (scheme and its options; the unquantized runs as the
 * full-precision reference): stored bits, quality and mean error over layers. A point averages
 * the configurations (method, rank, ... everything but the scheme) that every scheme
 * configuration of the study was run with, so two points differ only in the scheme; per seed the
 * mean over them, then mean and 95% t interval over seeds. When the schemes share no
 * configuration, each point averages its own (`matched` false, said in the chart). Null when no
 * analysed run has a quantized base with recorded bits.
 */
export function quantView(study: Study): QuantView | null {
  const runs = study.ok.filter((r) => storedBits(r) !== undefined);
  if (!runs.some(isQuantized)) return null;
  const quantized = runs.filter(isQuantized);
  const output = quantized.every((r) => quantFigures(r)?.meanOutputRelativeError !== undefined);
  const errorOf = (r: RunRecord) => {
    const q = quantFigures(r);
    return output ? q?.meanOutputRelativeError : q?.meanRelativeError;
  };
  const bySchemes = new Map<string, RunRecord[]>();
  for (const r of runs) bySchemes.set(schemeLabel(r), [...(bySchemes.get(schemeLabel(r)) ?? []), r]);
  const restSets = [...bySchemes.values()].map((rs) => new Set(rs.map(restKey)));
  const shared = [...restSets[0]].filter((k) => restSets.every((s) => s.has(k)));
  const matched = shared.length > 0;
  const keep = new Set(shared);
  /** Per seed the mean of `f` over the kept runs, then mean and interval over seeds. */
  const overSeeds = (rs: RunRecord[], f: (r: RunRecord) => number | undefined): MeanInterval | undefined => {
    const bySeed = new Map<number, number[]>();
    for (const r of rs) {
      const v = f(r);
      if (v !== undefined) bySeed.set(r.config.seed, [...(bySeed.get(r.config.seed) ?? []), v]);
    }
    const means = [...bySeed.values()].map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length);
    return means.length ? meanInterval(means) : undefined;
  };
  const points: QuantPoint[] = [];
  for (const [scheme, all] of bySchemes) {
    const rs = matched ? all.filter((r) => keep.has(restKey(r))) : all;
    const isQ = isQuantized(rs[0]);
    const error = isQ ? overSeeds(rs, errorOf) : undefined;
    points.push({
      scheme,
      quantized: isQ,
      configs: new Set(rs.map(restKey)).size,
      bits: meanInterval(rs.map((r) => storedBits(r)!)),
      quality: overSeeds(rs, (r) => valueOf(r, study.metric))!,
      ...(error ? { error } : {}),
    });
  }
  points.sort((a, b) => a.bits.mean - b.bits.mean || (a.scheme < b.scheme ? -1 : 1));
  return { points, errorKind: output ? "output" : "weight", matched, shared: shared.length };
}

/** A relative error for a table cell: 3 significant digits ("0.0914", "0.00452"), "–" when absent. */
export function showError(x: number | undefined): string {
  return x === undefined ? "–" : Number(x.toPrecision(3)).toString();
}

/**
 * A run page's quantization table: one row per quantized layer (scheme, stored bits, relative
 * weight and output errors, calibration rows, quantization time, llm-int8's outlier share) and a
 * last row with the run-level figures. Null for an unquantized run or one without layer figures.
 */
export function quantLayerRows(run: RunRecord): [string, Record<string, string>][] | null {
  const q = quantFigures(run);
  if (!q || !isQuantized(run) || q.layers.length === 0) return null;
  const opt = (x: number | undefined, f: (v: number) => string) => (x === undefined ? "–" : f(x));
  const row = (l: Omit<QuantLayerFigures, "name">): Record<string, string> => ({
    scheme: l.scheme ?? q.scheme,
    "bits per param": opt(l.bitsPerParam, (v) => v.toFixed(3)),
    "weight rel. error": showError(l.relativeError),
    "output rel. error": showError(l.outputRelativeError),
    "calibration rows": opt(l.calibrationRows, (v) => v.toLocaleString("en-US")),
    "quantize ms": opt(l.quantizeMs, (v) => v.toFixed(1)),
    "outlier share": opt(l.outlierShare, (v) => `${(v * 100).toFixed(2)}%`),
  });
  return [
    ...q.layers.map((l): [string, Record<string, string>] => [l.name, row(l)]),
    [
      `all ${q.layers.length} layers: bits overall, errors mean (max weight ${
        showError(q.maxRelativeError)
      }), rows and ms total`,
      row({
        scheme: q.scheme,
        bitsPerParam: q.bitsPerParam,
        relativeError: q.meanRelativeError,
        outputRelativeError: q.meanOutputRelativeError,
        calibrationRows: q.calibrationRows,
        quantizeMs: q.quantizeMs,
        outlierShare: q.outlierShare,
      }),
    ],
  ];
}
