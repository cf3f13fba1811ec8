/**
 * `deno run --allow-read bench/spread.ts REF OTHER...`: how far the quality metrics of the same
 * runs move between results folders made under conditions that change float summation order
 * (OpenBLAS threads or core type, another backend, another machine). The numbers behind the
 * quality tolerances of `baselines/policy.json` (see baselines/README.md).
 *
 * Runs are matched by their config without `backend` (so a wasm run meets its native twin; run
 * ids hash the backend). Per metric it prints, for each OTHER against REF, the largest absolute
 * and relative difference over the matched runs and how many differ at all.
 * @module
 */
import { canonicalJson, readRecords, type RunRecord } from "./record.ts";
import { runMain, UsageError } from "../models/util/args.ts";

/** Largest differences of one metric over matched runs. */
export interface MetricSpread {
  metric: string;
  runs: number;
  differing: number;
  maxAbs: number;
  maxRel: number;
}

/** A run's identity across backends: its config without the backend. */
function twinKey(r: RunRecord): string {
  return canonicalJson({ ...r.config, backend: undefined });
}

/** Per-metric spread of `other` against `ref`, over the successful runs both hold. */
export function metricSpread(ref: RunRecord[], other: RunRecord[]): MetricSpread[] {
  const byKey = new Map(other.filter((r) => r.status === "success").map((r) => [twinKey(r), r]));
  const spread = new Map<string, MetricSpread>();
  for (const a of ref) {
    const b = byKey.get(twinKey(a));
    if (a.status !== "success" || !b) continue;
    for (const [m, av] of Object.entries(a.metrics)) {
      const bv = b.metrics[m];
      if (bv === undefined || !Number.isFinite(av) || !Number.isFinite(bv)) continue;
      const s = spread.get(m) ?? { metric: m, runs: 0, differing: 0, maxAbs: 0, maxRel: 0 };
      const abs = Math.abs(bv - av);
      s.runs++;
      if (abs > 0) s.differing++;
      s.maxAbs = Math.max(s.maxAbs, abs);
      s.maxRel = Math.max(s.maxRel, av === 0 ? (abs === 0 ? 0 : Infinity) : abs / Math.abs(av));
      spread.set(m, s);
    }
  }
  return [...spread.values()].sort((x, y) => (x.metric < y.metric ? -1 : 1));
}

/** The spreads as a Markdown table. */
export function spreadTable(label: string, rows: MetricSpread[]): string {
  const e = (x: number) => (x === 0 ? "0" : x.toExponential(2));
  return [
    `${label}`,
    "",
    "| metric | runs | differing | max abs | max rel |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.metric} | ${r.runs} | ${r.differing} | ${e(r.maxAbs)} | ${e(r.maxRel)} |`),
  ].join("\n");
}

if (import.meta.main) {
  await runMain(async () => {
    const [ref, ...others] = Deno.args;
    if (!ref || others.length === 0 || ref.startsWith("-")) {
      throw new UsageError("usage: deno run --allow-read bench/spread.ts REF_DIR OTHER_DIR...");
    }
    const base = await readRecords(ref);
    for (const dir of others) {
      console.log(spreadTable(`${dir} vs ${ref}:`, metricSpread(base, await readRecords(dir))) + "\n");
    }
  });
}
