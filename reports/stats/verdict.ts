/**
 * Plain-language verdicts for one comparison.
 * @module
 */
import { cliffMagnitude } from "./effect_size.ts";

/** Inputs of {@link describeComparison}; only `name` and `diff` are required. */
export interface Comparison {
  /** Label, e.g. "rank 16 vs 8". */
  name: string;
  /** Difference in the metric (first minus second), in `unit`s. */
  diff: number;
  /** Raw p-value. */
  p?: number;
  /** Adjusted p-value; when present it is the one reported. */
  pAdjusted?: number;
  /** Name of the correction behind `pAdjusted` (default "Holm"). */
  correction?: string;
  cliffsDelta?: number;
  /** Unit of `diff` (default "accuracy points"). */
  unit?: string;
  /** Decimals of `diff` (default 1). */
  digits?: number;
  /** Seed-to-seed spread (e.g. {@link pooledSd} over per-configuration seed runs). */
  seedSd?: number;
  /** Significance level (default 0.05). */
  alpha?: number;
}

/** Format a p-value: three decimals, or "< 0.001". */
export function formatP(p: number): string {
  if (!(p >= 0 && p <= 1)) throw new Error(`formatP needs a p-value in [0, 1], got ${p}`);
  return p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`;
}

/**
 * "Within seed noise" flag: true when the difference cannot be told apart from seed-to-seed
 * variation, i.e. `|diff| < seedSd` (seedSd = pooled SD across seeds of the same
 * configuration) OR the reported p-value (adjusted if given) is `>= alpha`.
 * With neither seedSd nor a p-value it is false (nothing to judge by).
 */
export function withinSeedNoise(
  c: Pick<Comparison, "diff" | "p" | "pAdjusted" | "seedSd" | "alpha">,
): boolean {
  const alpha = c.alpha ?? 0.05;
  const p = c.pAdjusted ?? c.p;
  const small = c.seedSd !== undefined && Math.abs(c.diff) < c.seedSd;
  const ns = p !== undefined && p >= alpha;
  return small || ns;
}

/**
 * One-line verdict, e.g.
 * "rank 16 vs 8: +0.8 accuracy points, p = 0.003 after Holm, Cliff's delta 0.31 (small)",
 * with ", within seed noise" appended when {@link withinSeedNoise} holds.
 * The p shown is `pAdjusted` (with "after <correction>") when given, else the raw `p`.
 */
export function describeComparison(c: Comparison): string {
  if (!Number.isFinite(c.diff)) throw new Error(`describeComparison needs a finite diff, got ${c.diff}`);
  const digits = c.digits ?? 1;
  let d = c.diff.toFixed(digits);
  // A tiny negative diff rounds to "-0.0"; show it as "+0.0" like any other zero.
  if (Number(d) === 0) d = (0).toFixed(digits);
  const parts = [`${d.startsWith("-") ? "" : "+"}${d} ${c.unit ?? "accuracy points"}`];
  if (c.pAdjusted !== undefined) parts.push(`${formatP(c.pAdjusted)} after ${c.correction ?? "Holm"}`);
  else if (c.p !== undefined) parts.push(formatP(c.p));
  if (c.cliffsDelta !== undefined) {
    parts.push(`Cliff's delta ${c.cliffsDelta.toFixed(2)} (${cliffMagnitude(c.cliffsDelta)})`);
  }
  if (withinSeedNoise(c)) parts.push("within seed noise");
  return `${c.name}: ${parts.join(", ")}`;
}
