/**
 * Upper-tail probabilities of the reference distributions, taken from the `@stdlib` packages
 * rather than re-derived here.
 * @module
 */
import chisquareCdf from "@stdlib/stats-base-dists-chisquare-cdf";
import fCdf from "@stdlib/stats-base-dists-f-cdf";
import normalCdf from "@stdlib/stats-base-dists-normal-cdf";

/**
 * Chi-square survival function: `P(X >= x)` for `X ~ chi2(df)`, i.e. `1 - F(x; df)`.
 * Computed as a complement, so p-values below about 1e-15 read as 0.
 */
export function chiSquareSf(x: number, df: number): number {
  return Math.max(0, 1 - chisquareCdf(x, df));
}

/**
 * F survival function: `P(X >= x)` for `X ~ F(d1, d2)`, i.e. `1 - F(x; d1, d2)`.
 * Computed as a complement, so p-values below about 1e-15 read as 0.
 */
export function fSf(x: number, d1: number, d2: number): number {
  return Math.max(0, 1 - fCdf(x, d1, d2));
}

/**
 * Two-sided standard-normal p-value: `2 * Phi(-|z|)`, clipped to 1. Uses the lower tail so
 * small p-values keep their precision.
 */
export function normalTwoSidedP(z: number): number {
  return Math.min(1, 2 * normalCdf(-Math.abs(z), 0, 1));
}
