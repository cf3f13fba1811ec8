/**
 * Mann-Whitney U test for two independent samples, two-sided.
 * @module
 */
import { checkSample, rankAverage, tieTerm } from "./describe.ts";
import { normalTwoSidedP } from "./dists.ts";

/** Result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  /** `U1 = R1 - n1 (n1 + 1) / 2`, the U statistic of `x` (what scipy reports). */
  u: number;
  /** Two-sided p-value. */
  p: number;
  /** Which null distribution gave `p`. */
  method: "exact" | "asymptotic";
}

/**
 * Exact upper tail `P(U >= u)` of the tie-free Mann-Whitney U null distribution for sizes
 * `m`, `n`; a non-integer `u` gives `P(U >= ceil(u))` (U takes integer values only).
 * The counts of arrangements by U are the coefficients of the Gaussian binomial
 * `[m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)`; BigInt keeps them exact.
 */
export function mannWhitneyExactSf(u: number, m: number, n: number): number {
  if (!(Number.isInteger(m) && Number.isInteger(n) && m >= 1 && n >= 1)) {
    throw new Error(`mannWhitneyExactSf needs positive integer sizes, got ${m} and ${n}`);
  }
  const [small, large] = m <= n ? [m, n] : [n, m];
  const deg = small * large;
  const c = new Array<bigint>(deg + 1).fill(0n);
  c[0] = 1n;
  for (let i = 1; i <= small; i++) {
    // Multiply by (1 - q^(large+i)), then divide by (1 - q^i); each step is again a polynomial.
    const s = large + i;
    for (let k = deg; k >= s; k--) c[k] -= c[k - s];
    for (let k = i; k <= deg; k++) c[k] += c[k - i];
  }
  const uc = Math.ceil(u);
  if (uc <= 0) return 1;
  if (uc > deg) return 0;
  let total = 0n;
  let tail = 0n;
  for (let k = 0; k <= deg; k++) {
    total += c[k];
    if (k >= uc) tail += c[k];
  }
  return Number(tail) / Number(total);
}

/**
 * Two-sided Mann-Whitney U test, matching scipy.stats.mannwhitneyu(x, y, method="auto",
 * use_continuity=True) (checked against scipy 1.17.1). Pooled ranks (ties averaged) give
 * `U1 = R1 - n1(n1+1)/2`, `U2 = n1 n2 - U1`, `U = max(U1, U2)`.
 * - exact (no ties and min(n1, n2) <= 8): `p = 2 P(U' >= U)` under the exact (tie-free) null.
 * - asymptotic otherwise: `z = (U - n1 n2 / 2 - 0.5) / s`,
 *   `s = sqrt(n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))))` (tie and continuity
 *   corrected), `p = 2 (1 - Phi(z))`.
 *
 * `options.method` forces one of the two. Forced exact on tied data follows scipy's exact
 * path, which is not a test with ties: it casts U to an integer (`np.asarray(U, np.int64)`,
 * i.e. `floor(U)` since U >= 0) and evaluates the tie-free null there, so a half-integer U
 * gives `p = 2 P(U' >= floor(U))` (x = [1,0,5,1,6], y = [5,8,11,11,7,4]: U1 = 3.5, U = 26.5,
 * p = 2 P(U' >= 26) = 0.0519, where rounding up would give 2 P(U' >= 27) = 0.0303). p is
 * clipped to 1.
 */
export function mannWhitneyU(
  x: readonly number[],
  y: readonly number[],
  options: { method?: "auto" | "exact" | "asymptotic" } = {},
): MannWhitneyResult {
  checkSample(x, "mannWhitneyU x");
  checkSample(y, "mannWhitneyU y");
  const n1 = x.length;
  const n2 = y.length;
  const { ranks, tieSizes } = rankAverage([...x, ...y]);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += ranks[i];
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u = Math.max(u1, n1 * n2 - u1);
  const ties = tieSizes.some((t) => t > 1);
  const method = options.method ?? "auto";
  if (!["auto", "exact", "asymptotic"].includes(method)) {
    throw new Error(`mannWhitneyU method must be auto, exact or asymptotic, got ${method}`);
  }
  const exact = method === "exact" || (method === "auto" && !ties && (n1 <= 8 || n2 <= 8));
  if (exact) {
    // scipy truncates U to an integer before the exact survival function (see above).
    return { u: u1, p: Math.min(1, 2 * mannWhitneyExactSf(Math.floor(u), n1, n2)), method: "exact" };
  }
  const n = n1 + n2;
  const s = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm(tieSizes) / (n * (n - 1))));
  if (s === 0) throw new Error("mannWhitneyU: all values are identical, the test is undefined");
  const z = (u - (n1 * n2) / 2 - 0.5) / s;
  // z >= -0.5/s here since U >= n1 n2 / 2; a negative z means p clips to 1.
  return { u: u1, p: z <= 0 ? 1 : normalTwoSidedP(z), method: "asymptotic" };
}
