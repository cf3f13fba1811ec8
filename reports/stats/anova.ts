/**
 * One-way analysis of variance.
 * @module
 */
import { mean } from "./describe.ts";
import { fSf } from "./dists.ts";
import { checkGroups } from "./groups.ts";

/** Result of {@link oneWayAnova}. */
export interface OneWayAnovaResult {
  /** `F = MS_between / MS_within`. */
  f: number;
  /** Upper-tail F p-value. */
  p: number;
  /** `k - 1`. */
  dfBetween: number;
  /** `N - k`. */
  dfWithin: number;
  /** `SS_between = sum_i n_i (mean_i - grand mean)^2`. */
  ssBetween: number;
  /** `SS_within = sum_i sum_j (x_ij - mean_i)^2`. */
  ssWithin: number;
  /** Eta squared: `SS_between / (SS_between + SS_within)`. */
  etaSquared: number;
}

/**
 * One-way ANOVA (as scipy.stats.f_oneway):
 * `F = [SS_between / (k - 1)] / [SS_within / (N - k)]`, `p = P(F(k - 1, N - k) >= F)`,
 * and eta squared `SS_between / SS_total`. Needs N > k (some group with 2+ values).
 */
export function oneWayAnova(groups: readonly (readonly number[])[]): OneWayAnovaResult {
  checkGroups(groups, "oneWayAnova");
  const all = groups.flat();
  const k = groups.length;
  const n = all.length;
  if (n <= k) throw new Error(`oneWayAnova needs more values (${n}) than groups (${k})`);
  const grand = mean(all);
  let ssBetween = 0;
  let ssWithin = 0;
  for (const g of groups) {
    const m = mean(g);
    ssBetween += g.length * (m - grand) ** 2;
    for (const x of g) ssWithin += (x - m) ** 2;
  }
  const dfBetween = k - 1;
  const dfWithin = n - k;
  const f = (ssBetween / dfBetween) / (ssWithin / dfWithin);
  // All groups constant: F is infinite (different means) or undefined (all equal).
  const p = Number.isNaN(f) ? NaN : f === Infinity ? 0 : fSf(f, dfBetween, dfWithin);
  const ssTotal = ssBetween + ssWithin;
  return {
    f,
    p,
    dfBetween,
    dfWithin,
    ssBetween,
    ssWithin,
    etaSquared: ssTotal === 0 ? NaN : ssBetween / ssTotal,
  };
}
