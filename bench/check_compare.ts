/**
 * The comparison of `deno task check`: baseline records against current records under a policy,
 * as table rows with verdicts (pure functions, no I/O). The rules are described in `bench/check.ts`
 * and `baselines/README.md`.
 * @module
 */
import type { RunRecord } from "./record.ts";
import { cpuModelOf } from "./env.ts";
import { median } from "../models/util/numeric.ts";
import { describeTolerance, type Policy, qualityDirection, withinTolerance } from "./check_policy.ts";
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

/**
 * A number for a failure message: 6 significant digits, or as many as it takes to tell it from
 * `other` (a change of 3519.89 to 3519.89 says nothing).
 */
function exactPair(x: number, other: number): string {
  if (!Number.isFinite(x) || !Number.isFinite(other) || x === other) return fmt(x);
  for (let digits = 6; digits < 17; digits++) {
    if (x.toPrecision(digits) !== other.toPrecision(digits)) return Number(x.toPrecision(digits)).toString();
  }
  return String(x);
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

/** A timing that can be divided by: finite and positive (0 and NaN mean "not measured"). */
export const usable = (x: number): boolean => Number.isFinite(x) && x > 0;

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
    const delta = cv - bv;
    if (withinTolerance(bv, cv, tol)) {
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
    const better = qualityDirection(m, policy);
    const worse = Number.isNaN(delta) || (better !== null && (better === "higher" ? delta < 0 : delta > 0));
    const within = `tolerance ${describeTolerance(tol)}`;
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
        ? `${m} dropped from ${exactPair(bv, cv)} to ${
          exactPair(cv, bv)
        } (${within}); find the change that moved it`
        : `${m} changed from ${exactPair(bv, cv)} to ${exactPair(cv, bv)} (${
          better === null ? `no direction known for ${m}; ` : "better, but "
        }beyond ${within}); if intended, run --update --reason`,
    );
  }

  // Forgetting: a quality figure, lower is better; checked once both sides record it.
  if (policy.forgetting && b.forgetting && c.forgetting) {
    const bv = b.forgetting.delta;
    const cv = c.forgetting.delta;
    const tol = policy.forgetting.delta;
    const ok = withinTolerance(bv, cv, tol);
    const worse = Number.isNaN(cv) || cv > bv;
    push(
      {
        metric: "forgetting.delta",
        baseline: fmt(bv),
        current: fmt(cv),
        delta: signed(cv - bv || 0),
        verdict: ok ? "ok" : worse ? "regression" : "changed",
        fails: !ok,
      },
      worse
        ? `forgetting rose from ${exactPair(bv, cv)} to ${exactPair(cv, bv)} nats/token (tolerance ${
          describeTolerance(tol)
        }); find the change that moved it`
        : `forgetting fell from ${exactPair(bv, cv)} to ${
          exactPair(cv, bv)
        } nats/token (better, but beyond ` +
          `tolerance ${describeTolerance(tol)}); if intended, run --update --reason`,
    );
  } else if (policy.forgetting && c.forgetting && !b.forgetting) {
    push(
      {
        metric: "forgetting.delta",
        baseline: "-",
        current: fmt(c.forgetting.delta),
        delta: "new",
        verdict: "ok",
        fails: false,
      },
      undefined,
      "forgetting is not in the baseline (recorded since this version); --update --reason to start checking it",
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
  const minSteps = policy.latency.runMinSteps;
  const enoughSteps = (bt.stepLatencyMs?.n ?? 0) >= minSteps && (ct.stepLatencyMs?.n ?? 0) >= minSteps;
  const latencyRow = (key: "stepLatencyMs" | "inferLatencyMs") => {
    const bl = bt[key];
    const cl = ct[key];
    if (!bl || !cl || !usable(bl.p50) || !usable(cl.p50) || !usable(bl.p95) || !usable(cl.p95)) {
      return undefined;
    }
    const p50 = slowdown(bl.p50, cl.p50, bt.calibrationMs, ct.calibrationMs);
    const p95 = slowdown(bl.p95, cl.p95, bt.calibrationMs, ct.calibrationMs);
    const slow = p50.ratio > T && p95.ratio > 1;
    // A median of a handful of steps is too noisy to fail a build on its own (the suite rule still sees it).
    const gate = policy.latency.metrics[key] === "gate" && enoughSteps;
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
    const gate = policy.latency.metrics.trainTokensPerSecond === "gate" && enoughSteps;
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

/** A record's machine as far as float sums go: CPU model, OpenBLAS core and threads. */
function machineOf(env: RunRecord["env"]): { cpu: string; core: string; threads: string } {
  return {
    cpu: cpuModelOf(env.cpu) ?? "unknown",
    core: env.blas?.core ?? "unknown",
    threads: env.blas?.threads == null ? "unknown" : String(env.blas.threads),
  };
}

/**
 * How the baseline's machine differs from the current one (CPU model, BLAS core, BLAS threads),
 * or null when it does not. An unknown side counts as different: it cannot be shown the same.
 */
export function machineDifference(baseline: RunRecord["env"], current: RunRecord["env"]): string | null {
  const b = machineOf(baseline);
  const c = machineOf(current);
  const parts: string[] = [];
  if (b.cpu !== c.cpu || b.cpu === "unknown") parts.push(`CPU '${b.cpu}' vs '${c.cpu}'`);
  const native = baseline.backend === "native" || current.backend === "native";
  if (native && (b.core !== c.core || b.core === "unknown")) {
    parts.push(`BLAS core '${b.core}' vs '${c.core}'`);
  }
  if (native && b.threads !== c.threads) parts.push(`BLAS threads ${b.threads} vs ${c.threads}`);
  return parts.length ? parts.join(", ") : null;
}

/** Runs grouped by one difference, so that a notice is printed once per difference. */
function grouped(pairs: { runId: string; diff: string }[]): [string, string[]][] {
  const byDiff = new Map<string, string[]>();
  for (const { runId, diff } of pairs) byDiff.set(diff, [...(byDiff.get(diff) ?? []), runId]);
  return [...byDiff];
}

/** `3 run(s) (a, ...)`. */
const runList = (runs: string[]) => `${runs.length} run(s) (${runs[0]}${runs.length > 1 ? ", ..." : ""})`;

/** Compare baseline records with current records under a policy (pure: no I/O). */
export function compareRecords(baseline: RunRecord[], current: RunRecord[], policy: Policy): CheckResult {
  const out: CheckResult = { rows: [], failures: [], notices: [], compared: 0 };
  const byId = new Map(current.map((r) => [r.runId, r]));
  const baseIds = new Set(baseline.map((r) => r.runId));
  const stepRatios: { p50: number; p95: number }[] = [];
  const machines: { runId: string; diff: string }[] = [];
  const details: { runId: string; diff: string }[] = [];
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
      details.push({ runId: b.runId, diff: `'${b.env.backendDetail}' vs '${c.env.backendDetail}'` });
    }
    const diff = machineDifference(b.env, c.env);
    if (diff) machines.push({ runId: b.runId, diff });
    out.compared++;
    compareRun(b, c, policy, out, stepRatios);
  }
  out.notices.push(
    ...grouped(details).map(([diff, runs]) =>
      `backend detail differs for ${runList(runs)}: ${diff}; small numeric differences may follow`
    ),
    ...grouped(machines).map(([diff, runs]) =>
      `baseline from another machine for ${
        runList(runs)
      }: ${diff}; float sums may differ in the last bits, ` +
      "which the tolerances of policy.json absorb (the same machine is checked exactly by " +
      "`deno task bench --repeat-check`)"
    ),
  );
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
