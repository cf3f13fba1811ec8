/**
 * Forgetting in the report: every run record carries `forgetting` (bench/forgetting.ts: mean NLL
 * per token of held-out generic text after training minus before, nats; positive when the run
 * forgot). Per configuration its mean over seeds, the quality gain it bought (the primary metric
 * minus the frozen baseline's, paired by seed as in the baseline table, when the study has a
 * frozen run; else the metric itself), the Pareto frontier of gain against forgetting, and the
 * findings the numbers support.
 * @module
 */
import type { RunRecord } from "../bench/record.ts";
import type { BaselineComparison } from "./analysis.ts";
import { type ConfigGroup, type Study, summarize, type Summary, valueOf } from "./data.ts";
import { paretoFrontier } from "./frontier.ts";
import { pairedT, tInterval, tQuantile } from "./stats/paired.ts";

/** Unit of forgetting everywhere in the report. */
export const FORGETTING_UNIT = "nats per token";

/** A run's forgetting (nllAfter - nllBefore, nats per token), undefined when not recorded or not finite. */
export function forgettingDelta(run: RunRecord): number | undefined {
  const d = run.forgetting?.delta;
  return typeof d === "number" && Number.isFinite(d) ? d : undefined;
}

/** One configuration on the gain-vs-forgetting plane. */
export interface ForgettingPoint {
  group: ConfigGroup;
  /** Forgetting over the configuration's seeds (nats per token). */
  forgetting: Summary;
  /**
   * Quality gain: mean paired difference to frozen in the metric's difference unit (`relative`),
   * or the configuration's mean metric (raw, as the other charts plot it) when there is no frozen run.
   */
  gain: number;
  /** Whether the point is on the Pareto frontier (least forgetting for its gain). */
  frontier: boolean;
}

/** A study's forgetting figures. */
export interface ForgettingView {
  /** The texts the runs scored (forgetting on two texts is not comparable). */
  texts: string[];
  /** Gain measured against the frozen baseline (true) or the metric itself (false). */
  relative: boolean;
  /** Configurations with forgetting and a gain, frontier marked. */
  points: ForgettingPoint[];
  /** Configurations with forgetting but no frozen run to pair with (left off the plane). */
  unpaired: string[];
}

/**
 * The forgetting figures of a study, or null when no analysed run recorded forgetting. `baselines`
 * are the study's baseline comparisons (analysis.ts): their frozen rows give each configuration's
 * gain over frozen, paired by seed, train size and the rest of the config.
 */
export function forgettingView(
  study: Study,
  baselines: readonly BaselineComparison[],
): ForgettingView | null {
  const withF = study.groups.map((group) => ({
    group,
    forgetting: summarize(group.runs.map(forgettingDelta)),
  }))
    .filter((x): x is { group: ConfigGroup; forgetting: Summary } => x.forgetting !== undefined);
  if (withF.length === 0) return null;
  const texts = [
    ...new Set(study.ok.map((r) => r.forgetting?.text).filter((t): t is string => typeof t === "string")),
  ];
  const frozen = baselines.find((b) => b.baseline === "frozen");
  const unpaired: string[] = [];
  const pts: Omit<ForgettingPoint, "frontier">[] = [];
  for (const { group, forgetting } of withF) {
    if (!frozen) {
      pts.push({ group, forgetting, gain: group.primary.mean });
      continue;
    }
    if (group.factors.method === "frozen") {
      pts.push({ group, forgetting, gain: 0 });
      continue;
    }
    const row = frozen.rows.find((r) => r.key === group.key);
    if (row && row.n > 0 && Number.isFinite(row.judgement.diff)) {
      pts.push({ group, forgetting, gain: row.judgement.diff });
    } else unpaired.push(group.label);
  }
  // Forgetting is the cost (less is better), the gain the quality, in the metric's direction.
  const front = new Set(
    paretoFrontier(pts.map((p) => ({ cost: p.forgetting.mean, quality: p.gain })), study.metric.direction),
  );
  return {
    texts,
    relative: frozen !== undefined,
    points: pts.map((p, i) => ({ ...p, frontier: front.has(i) })),
    unpaired,
  };
}

/** A forgetting value as the report prints it: signed, 4 decimals ("+0.0123"). */
export function showForgetting(x: number): string {
  return `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}`;
}

const meanSd = (s: Summary) =>
  s.n > 1 ? `${showForgetting(s.mean)} ± ${s.sd.toFixed(4)}` : showForgetting(s.mean);

/** Student-t 95% interval of a configuration's mean primary metric over its seeds, or null for one seed. */
function meanInterval(g: ConfigGroup, study: Study): { lo: number; hi: number } | null {
  const xs = g.runs.map((r) => valueOf(r, study.metric)!);
  const s = summarize(xs);
  if (!s || s.n < 2) return null;
  const h = tQuantile(0.975, s.n - 1) * s.sd / Math.sqrt(s.n);
  return { lo: s.mean - h, hi: s.mean + h };
}

/**
 * The paired (same seed) difference in forgetting a - b: mean and 95% paired-t interval, or why
 * it cannot be tested (fewer than two shared seeds).
 */
function forgettingDifference(
  a: ConfigGroup,
  b: ConfigGroup,
): { n: number; mean: number; lo?: number; hi?: number } {
  const bySeed = new Map(b.runs.map((r) => [r.config.seed, forgettingDelta(r)]));
  const diffs = a.runs.flatMap((r) => {
    const x = forgettingDelta(r), y = bySeed.get(r.config.seed);
    return x === undefined || y === undefined ? [] : [x - y];
  });
  const mean = diffs.length ? diffs.reduce((s, d) => s + d, 0) / diffs.length : NaN;
  if (diffs.length < 2) return { n: diffs.length, mean };
  const ci = tInterval(pairedT(diffs), 0.95);
  return { n: diffs.length, mean, lo: ci.lo, hi: ci.hi };
}

/**
 * Findings lines about forgetting: the range over configurations, which configuration forgets
 * least among those whose mean quality lies within the best configuration's 95% t interval (with
 * the paired-by-seed difference to the best and whether its interval excludes 0), and the
 * gain-vs-forgetting frontier. Nothing when no run recorded forgetting.
 */
export function forgettingFindings(study: Study, view: ForgettingView | null): string[] {
  if (!view) return [];
  const u = study.metric;
  const withF = study.groups.filter((g) => summarize(g.runs.map(forgettingDelta)) !== undefined);
  const fOf = (g: ConfigGroup) => summarize(g.runs.map(forgettingDelta))!;
  if (view.texts.length > 1) {
    return [
      `Forgetting was measured on ${view.texts.length} different texts (${view.texts.join(", ")}): values ` +
      `on different texts are not comparable, so no configuration is ranked by it.`,
    ];
  }
  const text = view.texts[0] ?? "the generic text";
  const lines: string[] = [];
  const sorted = [...withF].sort((a, b) => fOf(a).mean - fOf(b).mean);
  const lo = sorted[0], hi = sorted[sorted.length - 1];
  lines.push(
    `Forgetting (mean NLL per token of ${text} after training minus before, ${FORGETTING_UNIT}; lower ` +
      `forgets less): ` +
      (withF.length === 1
        ? `${meanSd(fOf(lo))} for ${lo.label}, the one configuration that recorded it.`
        : `from ${meanSd(fOf(lo))} (${lo.label}) to ${meanSd(fOf(hi))} (${hi.label}) over ${withF.length} ` +
          `configurations (mean ± SD over seeds).`),
  );
  const best = study.groups[0];
  const ci = meanInterval(best, study);
  const q = (x: number) => (x * u.scale).toFixed(u.digits + 1);
  if (!withF.includes(best)) {
    lines.push(`The best configuration by ${u.name} (${best.label}) recorded no forgetting.`);
  } else if (!ci) {
    lines.push(
      `The best configuration by ${u.name} (${best.label}) has one seed: no interval to say which ` +
        `configurations match its quality, so none is named as forgetting less at equal quality.`,
    );
  } else {
    const within = withF.filter((g) => g.primary.mean >= ci.lo && g.primary.mean <= ci.hi);
    const least = within.reduce((a, b) => (fOf(b).mean < fOf(a).mean ? b : a));
    const head = `Among the ${within.length} configuration${within.length === 1 ? "" : "s"} whose mean ` +
      `${u.name} lies within the best's (${best.label}) 95% t interval [${q(ci.lo)}, ${q(ci.hi)}]`;
    if (within.length === 1) {
      lines.push(
        `No other configuration's mean ${u.name} lies within the best's (${best.label}) 95% t interval ` +
          `[${q(ci.lo)}, ${q(ci.hi)}]; the best forgets ${meanSd(fOf(best))}.`,
      );
    } else if (least === best) {
      lines.push(`${head}, the best itself forgets least (${meanSd(fOf(best))}).`);
    } else {
      const d = forgettingDifference(least, best);
      const test = d.lo === undefined
        ? `too few shared seeds (${d.n}) to test the difference`
        : `paired over ${d.n} seeds the difference is ${showForgetting(d.mean)} (95% CI [${
          showForgetting(d.lo)
        }, ${showForgetting(d.hi!)}])` +
          (d.hi! < 0 ? ": it forgets less" : ": the interval includes 0, so less forgetting is not shown");
      lines.push(
        `${head}, ${least.label} forgets least (${meanSd(fOf(least))} against the best's ${
          meanSd(fOf(best))
        }); ${test}.`,
      );
    }
  }
  const front = view.points.filter((p) => p.frontier).sort((a, b) => a.forgetting.mean - b.forgetting.mean);
  if (view.points.length >= 2) {
    lines.push(
      `Pareto frontier of ${
        view.relative ? `${u.name} gain over frozen` : u.name
      } against forgetting (no other configuration is better at equal or less forgetting): ` +
        front.map((p) => p.group.label).join("; ") + "." +
        (view.unpaired.length
          ? ` Left off for want of a frozen run to pair with: ${view.unpaired.join("; ")}.`
          : ""),
    );
  }
  return lines;
}
