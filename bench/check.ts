/**
 * `deno task check`: regression checks of a results folder against stored baseline records.
 *
 * Runs are matched by run id (a hash of the config, so the same config always has the same id).
 * Per matched run, with the tolerances of the policy file (`baselines/policy.json`):
 *
 * - quality metrics: `|current - baseline| <= abs`; a change either way fails (a seeded run on the
 *   same backend is deterministic, so any change means the numbers changed and needs `--update`);
 * - peak memory: growth above `rel` fails, a drop above `rel` is a notice;
 * - parameter counts and adapter bytes: exact (`rel` 0);
 * - latency and throughput (noise-aware; it must never cry wolf on a loaded machine):
 *   `ratio = min(raw ratio, calibrated ratio)` where the raw ratio is `current / baseline` (for
 *   throughput `baseline / current`, so > 1 always means slower) and the calibrated ratio divides
 *   each side by its own `calibrationMs` (a 256^3 matmul timed in the same process). Taking the
 *   smaller of the two means a slower machine (raw up, calibrated flat) and a noisy calibration
 *   (calibrated up, raw flat) both read as "not slower"; only a slowdown seen both ways counts.
 *   - per run: regression when the p50 ratio > `runThreshold` (2.75) AND the p95 ratio > 1 (the
 *     tail agrees in direction); for throughput the step p50 ratio must agree (> 1);
 *   - suite: regression when at least `suiteMinRuns` (6) runs are comparable, the median of their
 *     step p50 ratios > `suiteThreshold` (1.75) AND the median p95 ratio > 1. Run-to-run noise is
 *     independent between runs, so the median catches a moderate slowdown that hits every run;
 *   - metrics marked "report" (inference latency: one ~1 ms item, spread up to 4x) never fail.
 *
 * Runs in the baseline but not in the results fail (missing); runs only in the results are a
 * notice (extra). A run whose backend differs from its baseline's is "not comparable" (notice).
 * The exit code is 1 only on a failure, 2 on bad input. `--update --reason TEXT` makes the current
 * records the new baseline and appends a line to `HISTORY.jsonl`; `--json-out FILE` also writes
 * github-action-benchmark input (see {@link benchmarkActionEntries}).
 * @module
 */
import { join } from "node:path";
import { z } from "zod";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "./args.ts";
import { readRecords, type RunRecord, writeRecord } from "./record.ts";
import { gitState, median } from "./env.ts";
import { writeFileAtomic } from "../models/io.ts";

const QualityTol = z.strictObject({ abs: z.number().nonnegative(), better: z.enum(["higher", "lower"]) });
const RelTol = z.strictObject({ rel: z.number().nonnegative() });
const comment = { $comment: z.string().optional() };

/** Schema of the tolerance policy file (unknown keys are errors, so a typo cannot disable a check). */
export const PolicySchema = z.strictObject({
  ...comment,
  quality: z.strictObject({ ...comment, default: QualityTol, metrics: z.record(z.string(), QualityTol) }),
  memory: z.strictObject({ ...comment, peakTrainBytes: RelTol, peakInferBytes: RelTol }),
  size: z.strictObject({ ...comment, trainableParams: RelTol, totalParams: RelTol, adapterBytes: RelTol }),
  latency: z.strictObject({
    ...comment,
    runThreshold: z.number().gt(1),
    suiteThreshold: z.number().gt(1),
    suiteMinRuns: z.number().int().positive(),
    metrics: z.strictObject({
      stepLatencyMs: z.enum(["gate", "report"]),
      trainTokensPerSecond: z.enum(["gate", "report"]),
      inferLatencyMs: z.enum(["gate", "report"]),
    }),
  }),
});

/** A parsed tolerance policy. */
export type Policy = z.infer<typeof PolicySchema>;

/** Parse and validate policy JSON text; the one-line error names the file, the key and the fix. */
export function parsePolicy(text: string, source: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not valid JSON (${(err as Error).message}); fix the policy file`);
  }
  const parsed = PolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new InputError(
      `${source}: ${at}: ${issue.message} (see baselines/README.md for the policy format)`,
    );
  }
  return parsed.data;
}

/** Read and validate a policy file. */
export async function readPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new InputError(
        `policy file not found: ${path} (pass --policy FILE or add policy.json to the baseline)`,
      );
    }
    throw err;
  }
  return parsePolicy(text, path);
}

/** Verdict of one table row; `fails` on the row says whether it fails the check. */
export type Verdict =
  | "ok"
  | "regression"
  | "changed"
  | "improved"
  | "not comparable"
  | "missing"
  | "extra"
  | "report only";

/** One row of the comparison table. */
export interface Row {
  run: string;
  metric: string;
  baseline: string;
  current: string;
  delta: string;
  verdict: Verdict;
  /** Whether this row fails the check (exit code 1). */
  fails: boolean;
}

/** Outcome of a comparison: the table rows and one-line messages. */
export interface CheckResult {
  rows: Row[];
  /** One line per failing row, saying what happened and what to do. */
  failures: string[];
  /** Things worth knowing that do not fail the check (extra runs, other backend, improvements). */
  notices: string[];
  /** Runs matched by id and compared. */
  compared: number;
}

/** Format a number for the table: integers with separators, others with 6 significant digits. */
export function fmt(x: number | undefined | null): string {
  if (x === undefined || x === null) return "-";
  if (Number.isNaN(x)) return "NaN";
  if (Number.isInteger(x)) return x.toLocaleString("en-US");
  return Number(x.toPrecision(6)).toString();
}

function signed(x: number, digits?: number): string {
  const s = digits === undefined ? fmt(Math.abs(x)) : Math.abs(x).toFixed(digits);
  return (x < 0 ? "-" : "+") + s;
}

/** Slowdown ratios of a latency (smaller is better) pair: raw, calibrated, and the one used (min). */
export function slowdown(
  base: number,
  cur: number,
  baseCal: number,
  curCal: number,
): { raw: number; calibrated: number; ratio: number } {
  const raw = cur / base;
  const calibrated = (cur / curCal) / (base / baseCal);
  return { raw, calibrated, ratio: Math.min(raw, calibrated) };
}

const usable = (x: number) => Number.isFinite(x) && x > 0;

/** Compare one matched pair of successful, same-backend records into rows (and step ratios). */
function compareRun(
  b: RunRecord,
  c: RunRecord,
  policy: Policy,
  out: CheckResult,
  stepRatios: { p50: number; p95: number }[],
): void {
  const run = c.runId;
  const push = (row: Omit<Row, "run">, failure?: string, notice?: string) => {
    out.rows.push({ run, ...row });
    if (row.fails && failure) out.failures.push(`${run}: ${failure}`);
    if (notice) out.notices.push(`${run}: ${notice}`);
  };

  // Quality: every baseline metric must be present and within its absolute tolerance.
  const names = [...new Set([...Object.keys(b.metrics), ...Object.keys(c.metrics)])].sort();
  for (const m of names) {
    const bv = b.metrics[m];
    const cv = c.metrics[m];
    if (bv === undefined) {
      push(
        { metric: m, baseline: "-", current: fmt(cv), delta: "new", verdict: "ok", fails: false },
        undefined,
        `new metric ${m} (not in the baseline)`,
      );
      continue;
    }
    if (cv === undefined) {
      push(
        { metric: m, baseline: fmt(bv), current: "-", delta: "gone", verdict: "regression", fails: true },
        `metric ${m} is no longer recorded (restore it, or --update --reason if intended)`,
      );
      continue;
    }
    const tol = policy.quality.metrics[m] ?? policy.quality.default;
    const bothNaN = Number.isNaN(bv) && Number.isNaN(cv);
    const delta = cv - bv;
    if (bothNaN || Math.abs(delta) <= tol.abs) {
      push({
        metric: m,
        baseline: fmt(bv),
        current: fmt(cv),
        delta: signed(delta || 0),
        verdict: "ok",
        fails: false,
      });
      continue;
    }
    const worse = Number.isNaN(delta) || (tol.better === "higher" ? delta < 0 : delta > 0);
    push(
      {
        metric: m,
        baseline: fmt(bv),
        current: fmt(cv),
        delta: signed(delta),
        verdict: worse ? "regression" : "changed",
        fails: true,
      },
      worse
        ? `${m} dropped from ${fmt(bv)} to ${fmt(cv)} (tolerance ${tol.abs}); find the change that moved it`
        : `${m} changed from ${fmt(bv)} to ${
          fmt(cv)
        } (better, but beyond tolerance ${tol.abs}); if intended, run --update --reason`,
    );
  }

  // Peak memory: relative growth fails, a drop is good news.
  for (const key of ["peakTrainBytes", "peakInferBytes"] as const) {
    const bv = b.memory[key];
    const cv = c.memory[key];
    const rel = bv === 0 ? (cv === 0 ? 0 : Infinity) : (cv - bv) / bv;
    const tol = policy.memory[key].rel;
    const verdict: Verdict = rel > tol ? "regression" : rel < -tol ? "improved" : "ok";
    push(
      {
        metric: `memory.${key}`,
        baseline: fmt(bv),
        current: fmt(cv),
        delta: `${signed(rel * 100, 1)}%`,
        verdict,
        fails: verdict === "regression",
      },
      `${key} grew ${(rel * 100).toFixed(1)}% (tolerance ${
        (tol * 100).toFixed(1)
      }%); find what allocates more`,
      verdict === "improved" ? `${key} dropped ${(-rel * 100).toFixed(1)}%` : undefined,
    );
  }

  // Sizes: exact (or within rel) either way; a different count means the method changed.
  for (const key of ["trainableParams", "totalParams", "adapterBytes"] as const) {
    const bv = b.size[key];
    const cv = c.size[key];
    const tol = policy.size[key].rel;
    const off = Math.abs(cv - bv) > tol * Math.abs(bv);
    push(
      {
        metric: `size.${key}`,
        baseline: fmt(bv),
        current: fmt(cv),
        delta: signed(cv - bv),
        verdict: off ? "changed" : "ok",
        fails: off,
      },
      `${key} is ${fmt(cv)}, the baseline has ${
        fmt(bv)
      } (must match exactly); if intended, run --update --reason`,
    );
  }

  // Latency and throughput: the noise-aware rule of the module comment.
  const bt = b.timing;
  const ct = c.timing;
  const T = policy.latency.runThreshold;
  if (!usable(bt.calibrationMs) || !usable(ct.calibrationMs)) {
    push(
      {
        metric: "timing",
        baseline: fmt(bt.calibrationMs),
        current: fmt(ct.calibrationMs),
        delta: "-",
        verdict: "not comparable",
        fails: false,
      },
      undefined,
      "no calibration timing on one side; latency not compared",
    );
    return;
  }
  const latencyRow = (key: "stepLatencyMs" | "inferLatencyMs") => {
    const bl = bt[key];
    const cl = ct[key];
    if (!bl || !cl || !usable(bl.p50) || !usable(cl.p50) || !usable(bl.p95) || !usable(cl.p95)) {
      return undefined;
    }
    const p50 = slowdown(bl.p50, cl.p50, bt.calibrationMs, ct.calibrationMs);
    const p95 = slowdown(bl.p95, cl.p95, bt.calibrationMs, ct.calibrationMs);
    const slow = p50.ratio > T && p95.ratio > 1;
    const gate = policy.latency.metrics[key] === "gate";
    const verdict: Verdict = slow
      ? (gate ? "regression" : "report only")
      : p50.ratio < 1 / T && p95.ratio < 1
      ? "improved"
      : "ok";
    push(
      {
        metric: `${key}.p50 / calibration`,
        baseline: fmt(bl.p50 / bt.calibrationMs),
        current: fmt(cl.p50 / ct.calibrationMs),
        delta: `x${p50.ratio.toFixed(2)} (raw x${p50.raw.toFixed(2)}, cal x${
          p50.calibrated.toFixed(2)
        }; p95 x${p95.ratio.toFixed(2)})`,
        verdict,
        fails: slow && gate,
      },
      `${key} p50 is x${
        p50.ratio.toFixed(2)
      } slower both raw and calibrated (threshold x${T}) and p95 agrees (x${
        p95.ratio.toFixed(2)
      }); profile the step`,
      slow && !gate
        ? `${key} looks x${p50.ratio.toFixed(2)} slower (report only: too noisy to gate)`
        : undefined,
    );
    return { p50: p50.ratio, p95: p95.ratio };
  };
  const step = latencyRow("stepLatencyMs");
  if (step) stepRatios.push(step);
  latencyRow("inferLatencyMs");

  if (usable(bt.trainTokensPerSecond) && usable(ct.trainTokensPerSecond)) {
    // Throughput is bigger-is-better: swap the sides so that a ratio > 1 means slower.
    const s = slowdown(
      ct.trainTokensPerSecond,
      bt.trainTokensPerSecond,
      1 / ct.calibrationMs,
      1 / bt.calibrationMs,
    );
    const slow = s.ratio > T && (step?.p50 ?? 0) > 1;
    const gate = policy.latency.metrics.trainTokensPerSecond === "gate";
    push(
      {
        metric: "trainTokensPerSecond x calibration",
        baseline: fmt(bt.trainTokensPerSecond * bt.calibrationMs),
        current: fmt(ct.trainTokensPerSecond * ct.calibrationMs),
        delta: `x${(1 / s.ratio).toFixed(2)} (slowdown x${s.ratio.toFixed(2)})`,
        verdict: slow ? (gate ? "regression" : "report only") : s.ratio < 1 / T ? "improved" : "ok",
        fails: slow && gate,
      },
      `training throughput is x${
        s.ratio.toFixed(2)
      } lower both raw and calibrated (threshold x${T}) and step latency agrees; profile the step`,
    );
  }
}

/** Compare baseline records with current records under a policy (pure: no I/O). */
export function compareRecords(baseline: RunRecord[], current: RunRecord[], policy: Policy): CheckResult {
  const out: CheckResult = { rows: [], failures: [], notices: [], compared: 0 };
  const byId = new Map(current.map((r) => [r.runId, r]));
  const baseIds = new Set(baseline.map((r) => r.runId));
  const stepRatios: { p50: number; p95: number }[] = [];
  for (const b of [...baseline].sort((x, y) => (x.runId < y.runId ? -1 : 1))) {
    const c = byId.get(b.runId);
    const row = { run: b.runId, metric: "run", baseline: "present" };
    if (!c) {
      out.rows.push({ ...row, current: "missing", delta: "-", verdict: "missing", fails: true });
      out.failures.push(
        `${b.runId} (${b.name}): in the baseline but not in the results; rerun the suite, or drop it with --update --reason`,
      );
      continue;
    }
    if (c.status !== "success") {
      out.rows.push({ ...row, current: "failed", delta: "-", verdict: "regression", fails: true });
      out.failures.push(`${b.runId} (${b.name}): the run failed: ${c.error ?? "no error recorded"}`);
      continue;
    }
    if (b.status !== "success") {
      out.rows.push({
        ...row,
        baseline: "failed",
        current: "success",
        delta: "-",
        verdict: "not comparable",
        fails: false,
      });
      out.notices.push(`${b.runId}: the baseline run had failed; record a good one with --update --reason`);
      continue;
    }
    if (b.env.backend !== c.env.backend) {
      out.rows.push({
        run: b.runId,
        metric: "backend",
        baseline: b.env.backend,
        current: c.env.backend,
        delta: "-",
        verdict: "not comparable",
        fails: false,
      });
      out.notices.push(
        `${b.runId}: baseline from backend ${b.env.backend}, results from ${c.env.backend}: baselines are tied to their backend; produce one on ${c.env.backend} to compare`,
      );
      continue;
    }
    if (b.env.backendDetail !== c.env.backendDetail) {
      out.notices.push(
        `${b.runId}: backend detail differs ('${b.env.backendDetail}' vs '${c.env.backendDetail}'); small numeric differences may follow`,
      );
    }
    out.compared++;
    compareRun(b, c, policy, out, stepRatios);
  }
  for (const c of current) {
    if (baseIds.has(c.runId)) continue;
    out.rows.push({
      run: c.runId,
      metric: "run",
      baseline: "-",
      current: "present",
      delta: "-",
      verdict: "extra",
      fails: false,
    });
    out.notices.push(`${c.runId} (${c.name}): new run, not in the baseline; add it with --update --reason`);
  }

  // Suite rule: the median over runs is far tighter than any single run.
  const { suiteMinRuns, suiteThreshold } = policy.latency;
  if (stepRatios.length > 0) {
    const m50 = median(stepRatios.map((r) => r.p50));
    const m95 = median(stepRatios.map((r) => r.p95));
    const enough = stepRatios.length >= suiteMinRuns;
    const slow = enough && m50 > suiteThreshold && m95 > 1;
    const gate = policy.latency.metrics.stepLatencyMs === "gate";
    out.rows.push({
      run: `(all ${stepRatios.length} runs)`,
      metric: "stepLatencyMs median ratio",
      baseline: "1",
      current: fmt(m50),
      delta: `x${m50.toFixed(2)} (p95 x${m95.toFixed(2)})`,
      verdict: enough ? (slow ? (gate ? "regression" : "report only") : "ok") : "report only",
      fails: slow && gate,
    });
    if (slow && gate) {
      out.failures.push(
        `suite: median step p50 is x${
          m50.toFixed(2)
        } slower over ${stepRatios.length} runs (threshold x${suiteThreshold}) and p95 agrees; a change slowed every run`,
      );
    }
    if (!enough) {
      out.notices.push(`suite latency rule needs ${suiteMinRuns} comparable runs, has ${stepRatios.length}`);
    }
  }
  return out;
}

/** The comparison as a Markdown table (run, metric, baseline, current, delta, verdict). */
export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const lines = ["| run | metric | baseline | current | delta | verdict |", "|---|---|---:|---:|---|---|"];
  for (const r of rows) {
    const verdict = r.fails ? `**${r.verdict}**` : r.verdict;
    lines.push(`| ${[r.run, r.metric, r.baseline, r.current, r.delta].map(esc).join(" | ")} | ${verdict} |`);
  }
  return lines.join("\n");
}

/** One github-action-benchmark data point (`customSmallerIsBetter` / `customBiggerIsBetter`). */
export interface BenchmarkEntry {
  name: string;
  unit: string;
  value: number;
  range?: string;
  extra?: string;
}

/**
 * github-action-benchmark input from the current records: the action takes one tool per step, so
 * the entries are split by direction (`smaller` for `customSmallerIsBetter`, `bigger` for
 * `customBiggerIsBetter`). Latencies are calibrated (divided by `calibrationMs`) so the charts
 * compare across runners; names carry the run id so they stay unique and stable.
 */
export function benchmarkActionEntries(
  records: RunRecord[],
  policy: Policy,
): { smaller: BenchmarkEntry[]; bigger: BenchmarkEntry[] } {
  const smaller: BenchmarkEntry[] = [];
  const bigger: BenchmarkEntry[] = [];
  for (const r of [...records].sort((a, b) => (a.runId < b.runId ? -1 : 1))) {
    if (r.status !== "success") continue;
    const label = `${r.name} [${r.runId}]`;
    for (const [m, v] of Object.entries(r.metrics).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!Number.isFinite(v)) continue; // the action's charts cannot plot NaN
      const better = (policy.quality.metrics[m] ?? policy.quality.default).better;
      (better === "lower" ? smaller : bigger).push({ name: `${label} ${m}`, unit: m, value: v });
    }
    const t = r.timing;
    if (usable(t.calibrationMs)) {
      const cal = t.calibrationMs;
      const extra = `calibrationMs: ${fmt(cal)}`;
      for (const key of ["stepLatencyMs", "inferLatencyMs"] as const) {
        const l = t[key];
        if (!l || !usable(l.p50)) continue;
        smaller.push({
          name: `${label} ${key}.p50 / calibration`,
          unit: "calibration units",
          value: l.p50 / cal,
          extra: `${extra}\nraw p50: ${fmt(l.p50)} ms\nraw p95: ${fmt(l.p95)} ms (n ${l.n})`,
        });
      }
      if (usable(t.trainTokensPerSecond)) {
        bigger.push({
          name: `${label} trainTokensPerSecond x calibration`,
          unit: "tokens per calibration unit",
          value: t.trainTokensPerSecond * cal,
          extra: `${extra}\nraw: ${fmt(t.trainTokensPerSecond)} tokens/s`,
        });
      }
    }
    smaller.push({ name: `${label} peakTrainBytes`, unit: "bytes", value: r.memory.peakTrainBytes });
    smaller.push({ name: `${label} peakInferBytes`, unit: "bytes", value: r.memory.peakInferBytes });
  }
  return { smaller, bigger };
}

/** The two files `--json-out FILE` writes: `X.smaller.json` and `X.bigger.json` (X: FILE minus `.json`). */
export function jsonOutPaths(file: string): { smaller: string; bigger: string } {
  const stem = file.endsWith(".json") ? file.slice(0, -5) : file;
  return { smaller: `${stem}.smaller.json`, bigger: `${stem}.bigger.json` };
}

/** One line of `HISTORY.jsonl`. */
export interface HistoryEntry {
  date: string;
  reason: string;
  runs: string[];
  /** Baseline records dropped because the new results lack them. */
  removed: string[];
  commit: string | null;
  dirty: boolean | null;
}

/**
 * Make `records` the baseline in `dir`: write each atomically, remove baseline records the new
 * set lacks (other files, such as policy.json, are left alone), and append a history line.
 */
export async function updateBaseline(
  dir: string,
  records: RunRecord[],
  reason: string,
  git: { commit: string | null; dirty: boolean | null },
  now = new Date(),
): Promise<HistoryEntry> {
  const failed = records.filter((r) => r.status !== "success");
  if (failed.length) {
    throw new InputError(
      `${failed[0].runId} failed (${
        failed[0].error ?? "no error"
      }); a failed run cannot be a baseline: fix it or remove it from the results`,
    );
  }
  const keep = new Set(records.map((r) => r.runId));
  const exists = await Deno.stat(dir).then(() => true, () => false);
  const old = exists ? await readRecords(dir) : [];
  for (const r of records) await writeRecord(dir, r);
  const removed: string[] = [];
  for (const r of old) {
    if (keep.has(r.runId)) continue;
    await Deno.remove(join(dir, `${r.runId}.json`)).catch(() => {});
    removed.push(r.runId);
  }
  const entry: HistoryEntry = {
    date: now.toISOString(),
    reason,
    runs: [...keep].sort(),
    removed: removed.sort(),
    commit: git.commit,
    dirty: git.dirty,
  };
  const historyPath = join(dir, "HISTORY.jsonl");
  let history = "";
  try {
    history = await Deno.readTextFile(historyPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (history && !history.endsWith("\n")) history += "\n";
  // Rewrite the whole file atomically rather than append: a crash never leaves half a line.
  await writeFileAtomic(historyPath, history + JSON.stringify(entry) + "\n");
  return entry;
}

/** Options of {@link runCheck} (the CLI's flags, parsed). */
export interface CheckOptions {
  baseline: string;
  results: string;
  policy?: string;
  jsonOut?: string;
  update?: boolean;
  reason?: string;
}

/** What {@link runCheck} did: the comparison, the printed report, files written, the exit code. */
export interface CheckOutcome {
  result: CheckResult;
  report: string;
  written: string[];
  exitCode: 0 | 1;
  history?: HistoryEntry;
}

/** Read a folder that must hold records (or, when `allowEmpty`, may be empty or absent). */
async function readFolder(dir: string, what: string, allowEmpty: boolean): Promise<RunRecord[]> {
  if (allowEmpty && !(await Deno.stat(dir).then(() => true, () => false))) return [];
  let records: RunRecord[];
  try {
    records = await readRecords(dir);
  } catch (err) {
    throw new InputError(`${what}: ${(err as Error).message}`);
  }
  if (!records.length && !allowEmpty) {
    throw new InputError(
      what === "--baseline"
        ? `${what}: no run records in ${dir}; create the baseline with --update --reason "initial baseline"`
        : `${what}: no run records in ${dir}; run the suite first (deno task sweep ... --out ${dir})`,
    );
  }
  return records;
}

/** The whole command: compare, report, write JSON, and update the baseline when asked. */
export async function runCheck(o: CheckOptions, startWork: () => void = () => {}): Promise<CheckOutcome> {
  if (o.update && !o.reason?.trim()) {
    throw new UsageError("--update needs --reason TEXT (why the baseline changes)");
  }
  if (!o.update && o.reason !== undefined) throw new UsageError("--reason only goes with --update");
  const policy = await readPolicy(o.policy ?? join(o.baseline, "policy.json"));
  const current = await readFolder(o.results, "--results", false);
  const baseline = await readFolder(o.baseline, "--baseline", !!o.update);
  startWork();

  const result = compareRecords(baseline, current, policy);
  const failing = result.failures.length > 0;
  const lines = [markdownTable(result.rows), ""];
  if (result.failures.length) lines.push("Failures:", ...result.failures.map((f) => `- ${f}`), "");
  if (result.notices.length) lines.push("Notices:", ...result.notices.map((n) => `- ${n}`), "");
  lines.push(
    failing
      ? `check FAILED: ${result.failures.length} failure(s) over ${result.compared} compared run(s)`
      : `check passed: ${result.compared} run(s) compared, ${result.notices.length} notice(s)`,
  );

  const written: string[] = [];
  if (o.jsonOut) {
    const { smaller, bigger } = benchmarkActionEntries(current, policy);
    const paths = jsonOutPaths(o.jsonOut);
    await writeFileAtomic(paths.smaller, JSON.stringify(smaller, null, 2) + "\n");
    await writeFileAtomic(paths.bigger, JSON.stringify(bigger, null, 2) + "\n");
    written.push(paths.smaller, paths.bigger);
  }
  let history: HistoryEntry | undefined;
  if (o.update) {
    history = await updateBaseline(o.baseline, current, o.reason!.trim(), await gitState());
    written.push(join(o.baseline, "HISTORY.jsonl"));
    lines.push(
      `baseline updated: ${history.runs.length} run(s) written to ${o.baseline}` +
        (history.removed.length ? `, ${history.removed.length} removed` : ""),
    );
  }
  for (const w of written) lines.push(`wrote ${w}`);
  // An update is the deliberate acceptance of the new numbers, so it does not fail.
  return { result, report: lines.join("\n"), written, exitCode: failing && !o.update ? 1 : 0, history };
}

const SPEC = {
  baseline: {
    type: "string",
    default: "baselines",
    help: "folder of baseline run records (and policy.json)",
  },
  results: { type: "string", help: "folder of current run records (required)" },
  policy: { type: "string", help: "tolerance policy file (default: BASELINE/policy.json)" },
  "json-out": {
    type: "string",
    help: "also write github-action-benchmark input: FILE.smaller.json and FILE.bigger.json",
  },
  update: { type: "boolean", default: false, help: "make the current records the new baseline" },
  reason: { type: "string", help: "why the baseline changes (required with --update)" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values } = parseCli(Deno.args, SPEC);
    if (values.help) {
      return console.log(
        helpText(
          "deno task check --baseline baselines/ --results DIR [--json-out FILE] [--update --reason TEXT]",
          SPEC,
        ),
      );
    }
    if (!values.results) throw new UsageError("--results DIR is required (the folder the suite wrote)");
    const outcome = await runCheck({
      baseline: values.baseline,
      results: values.results,
      policy: values.policy,
      jsonOut: values["json-out"],
      update: values.update,
      reason: values.reason,
    }, startWork);
    console.log(outcome.report);
    if (outcome.exitCode) Deno.exit(outcome.exitCode);
  });
}
