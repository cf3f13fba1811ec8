/**
 * `deno task check`: regression check of a results folder against stored baseline records, matched by
 * run id, with the tolerances of `baselines/policy.json`: quality metrics within abs/rel tolerance,
 * memory growth within `rel`, sizes exact, latency and throughput by the noise-aware rule (a slowdown
 * must show both raw and calibrated, per run and over the suite). `baselines/README.md` states the
 * policy and the measurements behind each number. Records are validated when read (`parseRecord`);
 * exit 1 only on a failure, 2 on bad input. `--update --reason TEXT` promotes the current records and
 * appends to `HISTORY.jsonl`; `--json-out FILE` writes github-action-benchmark input.
 * @module
 */
import { join } from "node:path";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { readRecords, recordPath, type RunRecord, writeRecord } from "./record.ts";
import { gitState } from "./env.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { type CheckResult, compareRecords, fmt, markdownTable, usable } from "./check_compare.ts";
import { type Policy, qualityDirection, readPolicy } from "./check_policy.ts";

export * from "./check_compare.ts";
export * from "./check_policy.ts";

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
      const better = qualityDirection(m, policy);
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
    // recordPath refuses an unsafe run id; readRecords already proved each id is its file's name.
    await Deno.remove(recordPath(dir, r.runId)).catch(() => {});
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
