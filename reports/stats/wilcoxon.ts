/**
 * Wilcoxon signed-rank test for paired samples, two-sided.
 * @module
 */
import { checkSample, rankAverage, tieTerm } from "./describe.ts";
import { normalTwoSidedP } from "./dists.ts";

/** Result of {@link wilcoxonSignedRank}. */
export interface WilcoxonResult {
  /** `min(R+, R-)`, what scipy reports for the two-sided test. */
  statistic: number;
  /** Sum of ranks of the positive differences. */
  rPlus: number;
  /** Sum of ranks of the negative differences. */
  rMinus: number;
  /** Number of non-zero differences (zeros are dropped). */
  n: number;
  /** Two-sided p-value. */
  p: number;
  /** Which null distribution gave `p`. */
  method: "exact" | "permutation" | "asymptotic";
}

/** Options of {@link wilcoxonSignedRank}. */
export interface WilcoxonOptions {
  /** Continuity correction in the normal approximation (scipy's default is false). */
  correction?: boolean;
  /** Force the normal approximation (scipy's method="asymptotic"); default picks as described. */
  method?: "auto" | "asymptotic";
}

/**
 * Null distribution counts of `R+` with no ties: `c[s]` = number of subsets of `{1..n}`
 * summing to `s`, the coefficients of `prod_{k=1..n} (1 + q^k)`. Exact in doubles for n <= 52.
 */
function signedRankCounts(n: number): number[] {
  const max = (n * (n + 1)) / 2;
  const c = new Array<number>(max + 1).fill(0);
  c[0] = 1;
  for (let k = 1; k <= n; k++) {
    for (let s = max; s >= k; s--) c[s] += c[s - k];
  }
  return c;
}

/**
 * Two-sided Wilcoxon signed-rank test on `d = x - y` (or on `x` alone), matching
 * scipy.stats.wilcoxon(x, y, zero_method="wilcox", correction=False, method="auto"):
 * zero differences are dropped, `|d|` ranked with ties averaged, `R+` / `R-` are the rank
 * sums of positive / negative differences.
 * - exact (no ties, no zeros, N <= 50): `p = 2 min(P(R+ >= r+), P(R+ <= r+))` under the
 *   exact null (all 2^n sign patterns of ranks 1..n).
 * - permutation (ties or zeros, N <= 13, N counting zeros): the same formula with the null
 *   enumerated over all 2^n sign flips of the actual (tied) ranks.
 * - asymptotic otherwise: `z = (R+ - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum(t^3 - t)/2) / 24)`,
 *   optionally `|z| - 0.5/se` (continuity), `p = 2 Phi(-|z|)`.
 * `options.method = "asymptotic"` forces the normal approximation. p is clipped to 1. Throws if
 * every difference is zero.
 */
export function wilcoxonSignedRank(
  x: readonly number[],
  y?: readonly number[],
  options: WilcoxonOptions = {},
): WilcoxonResult {
  checkSample(x, "wilcoxonSignedRank x");
  let d: number[] = [...x];
  if (y !== undefined) {
    checkSample(y, "wilcoxonSignedRank y");
    if (y.length !== x.length) {
      throw new Error(
        `wilcoxonSignedRank needs paired samples of equal length, got ${x.length} and ${y.length}`,
      );
    }
    d = x.map((v, i) => v - y[i]);
  }
  const total = d.length;
  const nz = d.filter((v) => v !== 0);
  const n = nz.length;
  if (n === 0) throw new Error("wilcoxonSignedRank: all differences are zero, the test is undefined");
  const { ranks, tieSizes } = rankAverage(nz.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  nz.forEach((v, i) => v > 0 ? (rPlus += ranks[i]) : (rMinus += ranks[i]));
  const hasTies = tieSizes.some((t) => t > 1);
  const zeros = total - n;
  const base = { statistic: Math.min(rPlus, rMinus), rPlus, rMinus, n };

  const auto = (options.method ?? "auto") === "auto";
  if (auto && !hasTies && zeros === 0 && total <= 50) {
    const c = signedRankCounts(n);
    const all = 2 ** n;
    let le = 0;
    let ge = 0;
    c.forEach((cnt, s) => {
      if (s <= rPlus) le += cnt;
      if (s >= rPlus) ge += cnt;
    });
    return { ...base, p: Math.min(1, (2 * Math.min(le, ge)) / all), method: "exact" };
  }
  if (auto && total <= 13) {
    // Enumerate every sign pattern of the tied ranks; a relative tolerance keeps ties in R+
    // that differ only by rounding on the right side of the comparison (as scipy does).
    const gamma = Math.abs(rPlus) * 1e-12;
    let le = 0;
    let ge = 0;
    const all = 2 ** n;
    for (let mask = 0; mask < all; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) if (mask & (1 << i)) s += ranks[i];
      if (s <= rPlus + gamma) le++;
      if (s >= rPlus - gamma) ge++;
    }
    return { ...base, p: Math.min(1, (2 * Math.min(le, ge)) / all), method: "permutation" };
  }
  const mn = (n * (n + 1)) / 4;
  const se = Math.sqrt((n * (n + 1) * (2 * n + 1) - tieTerm(tieSizes) / 2) / 24);
  let z = (rPlus - mn) / se;
  if (options.correction) z -= Math.sign(z) * 0.5 / se;
  return { ...base, p: normalTwoSidedP(z), method: "asymptotic" };
}
