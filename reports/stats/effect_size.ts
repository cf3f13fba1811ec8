/**
 * Effect sizes for two samples.
 * @module
 */
import { checkSample, mean, variance } from "./describe.ts";

/** Magnitude labels of Cliff's delta. */
export type CliffMagnitude = "negligible" | "small" | "medium" | "large";

/** Result of {@link cliffsDelta}. */
export interface CliffResult {
  delta: number;
  magnitude: CliffMagnitude;
}

/**
 * Label |delta| with the thresholds of Romano et al. (2006):
 * `< 0.147` negligible, `< 0.33` small, `< 0.474` medium, else large.
 */
export function cliffMagnitude(delta: number): CliffMagnitude {
  const a = Math.abs(delta);
  if (!Number.isFinite(a)) throw new Error(`cliffMagnitude needs a finite delta, got ${delta}`);
  return a < 0.147 ? "negligible" : a < 0.33 ? "small" : a < 0.474 ? "medium" : "large";
}

/**
 * Cliff's delta: `(#{(i,j): x_i > y_j} - #{(i,j): x_i < y_j}) / (n_x n_y)`, in [-1, 1];
 * positive when x tends to be larger. Equals `2 U1 / (n_x n_y) - 1` of Mann-Whitney.
 */
export function cliffsDelta(x: readonly number[], y: readonly number[]): CliffResult {
  checkSample(x, "cliffsDelta x");
  checkSample(y, "cliffsDelta y");
  let gt = 0;
  let lt = 0;
  for (const a of x) {
    for (const b of y) {
      if (a > b) gt++;
      else if (a < b) lt++;
    }
  }
  const delta = (gt - lt) / (x.length * y.length);
  return { delta, magnitude: cliffMagnitude(delta) };
}

/**
 * Pooled standard deviation: `sqrt(((n1 - 1) s1^2 + (n2 - 1) s2^2) / (n1 + n2 - 2))`,
 * generalised to k groups as `sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1))`. Groups of one value
 * carry no spread and are skipped.
 */
export function pooledSd(groups: readonly (readonly number[])[]): number {
  let num = 0;
  let den = 0;
  groups.forEach((g, i) => {
    checkSample(g, `pooledSd group ${i}`);
    if (g.length < 2) return;
    num += (g.length - 1) * variance(g);
    den += g.length - 1;
  });
  if (den === 0) throw new Error("pooledSd needs at least one group with 2 or more values");
  return Math.sqrt(num / den);
}

/**
 * Cohen's d with the pooled SD: `d = (mean(x) - mean(y)) / s_p`,
 * `s_p = sqrt(((n_x - 1) s_x^2 + (n_y - 1) s_y^2) / (n_x + n_y - 2))`.
 */
export function cohensD(x: readonly number[], y: readonly number[]): number {
  checkSample(x, "cohensD x");
  checkSample(y, "cohensD y");
  if (x.length + y.length < 3) throw new Error("cohensD needs at least 3 values in total");
  const sp = pooledSd([x, y]);
  if (sp === 0) throw new Error("cohensD: both samples are constant, d is undefined");
  return (mean(x) - mean(y)) / sp;
}
