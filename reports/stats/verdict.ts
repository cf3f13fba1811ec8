/**
 * Plain-language verdicts for one comparison of two levels, judged by the paired mean
 * difference's own standard error (never by the seed-to-seed spread of single runs):
 *
 * - "better" / "worse": the paired t-test rejects a zero difference, i.e. the (1 - a/k) CI of the
 *   mean difference excludes 0 (Bonferroni over the k comparisons of a family: unlike Holm's
 *   step-down, its intervals agree with its p-values exactly, so a verdict never contradicts the
 *   interval printed beside it).
 * - "equivalent within ±m": not different, and TOST (two one-sided t-tests) shows |difference| < m,
 *   i.e. the (1 - 2a/k) CI lies inside (-m, m).
 * - "not shown equivalent": neither; the (1 - 2a/k) CI reaches beyond ±m. Absence of evidence of a
 *   difference is never read as equivalence.
 * - "not testable": fewer than 2 matched pairs.
 * @module
 */
import { cliffMagnitude } from "./effect_size.ts";
import { type Interval, type PairedT, pairedT, tInterval, type Tost, tost } from "./paired.ts";

/** Format a p-value: "p = 0.012", or "p < 0.001". */
export function formatP(p: number): string {
  if (!(p >= 0 && p <= 1)) throw new Error(`formatP needs a p-value in [0, 1], got ${p}`);
  return p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`;
}

/** A number with an explicit sign and `digits` decimals; a value that rounds to zero is "+0.0". */
export function signed(x: number, digits: number): string {
  let d = x.toFixed(digits);
  if (Number(d) === 0) d = (0).toFixed(digits);
  return d.startsWith("-") ? d : `+${d}`;
}

/** What a comparison concluded, from the first level's side. */
export type VerdictKind = "better" | "worse" | "equivalent" | "not shown equivalent" | "not testable";

/** Inputs of {@link judgeDifference}. */
export interface JudgeInput {
  /** Label, e.g. "rank 16 vs 4". */
  name: string;
  /** The two levels (a minus b is the difference). */
  a: string;
  b: string;
  /** Paired differences a - b, already in `unit`s. */
  diffs: readonly number[];
  direction: "higher" | "lower";
  /** Equivalence margin m (> 0) in `unit`s. */
  margin: number;
  /** Family-wise significance level (default 0.05). */
  alpha?: number;
  /** Comparisons in the family, for Bonferroni (default 1). */
  comparisons?: number;
  /** Unit of the differences (default "accuracy points"). */
  unit?: string;
  /** Decimals of differences (default 1). */
  digits?: number;
  cliffsDelta?: number;
}

/** The verdict and the numbers behind it. */
export interface Judgement {
  kind: VerdictKind;
  /** The better level, or null when neither is shown better. */
  better: string | null;
  n: number;
  /** Mean paired difference a - b. */
  diff: number;
  test?: PairedT;
  /** Bonferroni-adjusted two-sided p of the t-test. */
  pAdjusted?: number;
  /** CI of the mean difference at level 1 - alpha/k (excludes 0 exactly when pAdjusted < alpha). */
  ci?: Interval;
  /** TOST p (Bonferroni-adjusted) and its CI at level 1 - 2 alpha/k. */
  equivalence?: Tost & { pAdjusted: number; ci: Interval };
  margin: number;
  /** One line: "rank 16 vs 4: +2.1 accuracy points (95% CI [0.8, 3.4], paired t, p = 0.004): 16 is better". */
  text: string;
}

/** The percentage of a level, without trailing zeros: 0.95 -> "95%", 0.983 -> "98.3%". */
function pct(level: number): string {
  return `${Number((level * 100).toFixed(2))}%`;
}

/** Judge a paired difference by its own CI and TOST; see the module doc for the rule. */
export function judgeDifference(c: JudgeInput): Judgement {
  const alpha = c.alpha ?? 0.05;
  const k = Math.max(1, c.comparisons ?? 1);
  const unit = c.unit ?? "accuracy points";
  const digits = c.digits ?? 1;
  if (!(c.margin > 0)) throw new Error(`judgeDifference needs a margin > 0, got ${c.margin}`);
  const n = c.diffs.length;
  const diff = n ? c.diffs.reduce((s, x) => s + x, 0) / n : NaN;
  const num = (x: number) => x.toFixed(digits);
  const m = `±${num(c.margin)}`;
  if (n < 2) {
    const what = n === 0 ? "no matched runs" : `${signed(diff, digits)} ${unit} from 1 matched pair`;
    return {
      kind: "not testable",
      better: null,
      n,
      diff,
      margin: c.margin,
      text: `${c.name}: ${what}; not testable (needs 2 or more matched pairs)`,
    };
  }
  const test = pairedT(c.diffs);
  const pAdjusted = Math.min(1, test.p * k);
  const ci = tInterval(test, 1 - alpha / k);
  const eq = tost(test, c.margin);
  const equivalence = { ...eq, pAdjusted: Math.min(1, eq.p * k), ci: tInterval(test, 1 - 2 * alpha / k) };
  const adj = k > 1 ? `, Bonferroni over ${k}` : "";
  const cliff = c.cliffsDelta === undefined
    ? ""
    : `, Cliff's delta ${c.cliffsDelta.toFixed(2)} (${cliffMagnitude(c.cliffsDelta)})`;
  const head = `${c.name}: ${signed(diff, digits)} ${unit}`;
  const interval = (i: Interval) => `${pct(i.level)} CI [${num(i.lo)}, ${num(i.hi)}]`;
  let kind: VerdictKind;
  let better: string | null = null;
  let text: string;
  if (pAdjusted < alpha) {
    const aBetter = (diff > 0) === (c.direction === "higher");
    kind = aBetter ? "better" : "worse";
    better = aBetter ? c.a : c.b;
    const alsoEq = equivalence.pAdjusted < alpha ? `; the difference is within ${m} ${unit}` : "";
    text = `${head} (${interval(ci)}, paired t, ${
      formatP(pAdjusted)
    }${adj}${cliff}): ${better} is better${alsoEq}`;
  } else if (equivalence.pAdjusted < alpha) {
    kind = "equivalent";
    text = `${head} (${interval(equivalence.ci)}, TOST ${formatP(equivalence.pAdjusted)}${adj}${cliff}): ` +
      `equivalent within ${m} ${unit}`;
  } else {
    kind = "not shown equivalent";
    text = `${head} (paired t ${formatP(pAdjusted)}${adj}${cliff}): no difference shown, and not shown ` +
      `equivalent within ${m} ${unit} (${interval(equivalence.ci)})`;
  }
  return { kind, better, n, diff, test, pAdjusted, ci, equivalence, margin: c.margin, text };
}
