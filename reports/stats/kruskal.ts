/**
 * Kruskal-Wallis H test (k independent samples, rank based).
 * @module
 */
import { rankAverage, tieTerm } from "./describe.ts";
import { chiSquareSf } from "./dists.ts";
import { checkGroups } from "./groups.ts";

/** Result of {@link kruskalWallis}. */
export interface KruskalResult {
  /** Tie-corrected H statistic. */
  h: number;
  /** Degrees of freedom, `k - 1`. */
  df: number;
  /** Upper-tail chi-square p-value. */
  p: number;
}

/**
 * Kruskal-Wallis H test, as scipy.stats.kruskal:
 * `H = [12 / (N (N + 1)) * sum_i R_i^2 / n_i - 3 (N + 1)] / [1 - sum(t^3 - t) / (N^3 - N)]`,
 * with `R_i` the rank sum of group i over the pooled sample (ties averaged) and `t` the tie
 * group sizes; `p = P(chi2(k - 1) >= H)`.
 * Throws when every value is identical (H is undefined).
 */
export function kruskalWallis(groups: readonly (readonly number[])[]): KruskalResult {
  checkGroups(groups, "kruskalWallis");
  const pooled = groups.flat();
  const n = pooled.length;
  const { ranks, tieSizes } = rankAverage(pooled);
  const ties = 1 - tieTerm(tieSizes) / (n ** 3 - n);
  if (ties === 0) throw new Error("kruskalWallis: all values are identical, H is undefined");
  let offset = 0;
  let s = 0;
  for (const g of groups) {
    let r = 0;
    for (let i = 0; i < g.length; i++) r += ranks[offset + i];
    s += (r * r) / g.length;
    offset += g.length;
  }
  const h = (12 / (n * (n + 1)) * s - 3 * (n + 1)) / ties;
  const df = groups.length - 1;
  return { h, df, p: chiSquareSf(h, df) };
}
