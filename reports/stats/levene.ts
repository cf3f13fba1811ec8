/**
 * Levene's test for equal variances, median-centred (Brown-Forsythe).
 * @module
 */
import { median } from "../../models/util/numeric.ts";
import { oneWayAnova } from "./anova.ts";
import { checkGroups } from "./groups.ts";

/** Result of {@link levene}. */
export interface LeveneResult {
  /** Levene's W. */
  w: number;
  /** Upper-tail F(k - 1, N - k) p-value. */
  p: number;
  dfBetween: number;
  dfWithin: number;
}

/**
 * Levene's test with `center = median` (Brown-Forsythe; scipy.stats.levene's default).
 * `W` is the one-way ANOVA F of the absolute deviations `z_ij = |x_ij - median_i|`:
 * `W = (N - k) / (k - 1) * sum_i n_i (zbar_i - zbar)^2 / sum_i sum_j (z_ij - zbar_i)^2`,
 * `p = P(F(k - 1, N - k) >= W)`.
 */
export function levene(groups: readonly (readonly number[])[]): LeveneResult {
  checkGroups(groups, "levene");
  const z = groups.map((g) => {
    const m = median(g);
    return g.map((x) => Math.abs(x - m));
  });
  const a = oneWayAnova(z);
  return { w: a.f, p: a.p, dfBetween: a.dfBetween, dfWithin: a.dfWithin };
}
