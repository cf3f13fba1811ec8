/**
 * Paired mean differences judged by their own standard error: the paired t-test and its
 * confidence interval, and equivalence by two one-sided tests (TOST, Schuirmann 1987).
 *
 * For differences d_1..d_n: mean m, sd s, se = s / sqrt(n), df = n - 1, t = m / se.
 * CI(1 - a) = m ± t_{1 - a/2, df} · se. TOST against margin δ: t_lo = (m + δ) / se with
 * p_lo = P(T > t_lo), t_hi = (m - δ) / se with p_hi = P(T < t_hi), p = max(p_lo, p_hi);
 * equivalence at level a exactly when the (1 - 2a) CI lies inside (-δ, δ).
 * Student's t comes from the F distribution: T^2 ~ F(1, df).
 * @module
 */
import { fSf } from "./dists.ts";
import { checkSample, mean, sd } from "./describe.ts";

/** `P(T <= t)` for Student's t with `df` degrees of freedom. */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`tCdf needs df > 0, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = fSf(t * t, 1, df) / 2; // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

/** The `q` quantile of Student's t (bisection on {@link tCdf}; |error| < 1e-10). */
export function tQuantile(q: number, df: number): number {
  if (!(q > 0 && q < 1)) throw new Error(`tQuantile needs q in (0, 1), got ${q}`);
  if (q === 0.5) return 0;
  let lo = -1, hi = 1;
  while (tCdf(lo, df) > q) lo *= 2;
  while (tCdf(hi, df) < q) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-11; i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** A confidence interval and its level (0.95 for 95%). */
export interface Interval {
  lo: number;
  hi: number;
  level: number;
}

/** Paired t-test of mean difference 0. */
export interface PairedT {
  n: number;
  mean: number;
  sd: number;
  se: number;
  df: number;
  t: number;
  /** Two-sided p-value. */
  p: number;
}

/**
 * Paired t-test on differences (at least 2). All differences equal: se 0, so p is 0 when the
 * mean is not 0 (a sure difference) and 1 when it is.
 */
export function pairedT(diffs: readonly number[]): PairedT {
  checkSample(diffs, "pairedT", 2);
  const n = diffs.length;
  const m = mean(diffs);
  const s = sd(diffs);
  const se = s / Math.sqrt(n);
  const df = n - 1;
  if (se === 0) {
    return { n, mean: m, sd: s, se, df, t: m === 0 ? 0 : Math.sign(m) * Infinity, p: m === 0 ? 1 : 0 };
  }
  const t = m / se;
  return { n, mean: m, sd: s, se, df, t, p: Math.min(1, fSf(t * t, 1, df)) };
}

/** The two-sided `level` CI of the mean difference from a {@link pairedT} result. */
export function tInterval(res: PairedT, level: number): Interval {
  if (!(level > 0 && level < 1)) throw new Error(`CI level must be in (0, 1), got ${level}`);
  const h = res.se === 0 ? 0 : tQuantile(1 - (1 - level) / 2, res.df) * res.se;
  return { lo: res.mean - h, hi: res.mean + h, level };
}

/** TOST equivalence test against ±margin. */
export interface Tost {
  margin: number;
  /** p of H0: mean <= -margin (one-sided, upper tail). */
  pLower: number;
  /** p of H0: mean >= +margin (one-sided, lower tail). */
  pUpper: number;
  /** max(pLower, pUpper): equivalence is shown at level a when p < a. */
  p: number;
}

/** Two one-sided t-tests of |mean difference| < margin (margin > 0). */
export function tost(res: PairedT, margin: number): Tost {
  if (!(margin > 0) || !Number.isFinite(margin)) throw new Error(`TOST needs a margin > 0, got ${margin}`);
  let pLower: number, pUpper: number;
  if (res.se === 0) {
    pLower = res.mean > -margin ? 0 : 1;
    pUpper = res.mean < margin ? 0 : 1;
  } else {
    pLower = 1 - tCdf((res.mean + margin) / res.se, res.df);
    pUpper = tCdf((res.mean - margin) / res.se, res.df);
  }
  return { margin, pLower, pUpper, p: Math.max(pLower, pUpper) };
}
