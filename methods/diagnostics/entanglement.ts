/**
 * "Artificial entanglement" of a weight update: vec(dW)/||dW||_F read as a pure state on a chain
 * of sites (the prime factors of the row dimension, then those of the column dimension), and
 * the von Neumann entropy of every bipartition of that chain, i.e. the bond entropies of the
 * state's exact matrix product state.
 * @module
 */
import {
  checkMatrix,
  type MatrixData,
  numericalRank,
  shannonEntropy,
  type Shape,
  squaredSingularValues,
} from "./linalg.ts";

/** Primes above this stay unsplit by default; see {@link primeSites}. */
export const DEFAULT_MAX_PRIME = 97;

/**
 * Split a dimension n into sites d_1 <= d_2 <= ... with prod d_i = n: the prime factors of n up to
 * `maxPrime`, ascending, and whatever is left (>1, having only larger prime factors) as one
 * final site, so e.g. 96 -> [2, 2, 2, 2, 2, 3] and, with maxPrime 7, 2 * 11 * 13 -> [2, 143].
 * n = 1 gives no sites.
 */
export function primeSites(n: number, maxPrime = DEFAULT_MAX_PRIME): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`dimension must be a positive integer, got ${n}`);
  if (!Number.isInteger(maxPrime) || maxPrime < 2) {
    throw new Error(`maxPrime must be an integer >= 2, got ${maxPrime}`);
  }
  const sites: number[] = [];
  let rest = n;
  for (let p = 2; p <= maxPrime && p * p <= rest; p++) {
    while (rest % p === 0) {
      sites.push(p);
      rest /= p;
    }
  }
  // What remains is 1, a prime (<= maxPrime or not), or a product of primes > maxPrime: one site.
  if (rest > 1) sites.push(rest);
  return sites;
}

/** Bond-entropy profile of an update's exact MPS. */
export interface EntanglementProfile {
  /** Site dimensions: row sites first, then column sites; prod = rows * cols. */
  sites: number[];
  /** Number of leading sites that factor the row dimension (the middle cut is after them). */
  rowSiteCount: number;
  /** entropy[l - 1] = S(l) for the cut after site l, l = 1..L-1 (nats). */
  entropy: number[];
  /** bound[l - 1] = ln(min(prod_{i<=l} d_i, prod_{i>l} d_i)), the maximum S(l) can take. */
  bound: number[];
  /** Index l of the cut between row and column sites (0 if rows or cols is 1 and no such cut exists). */
  middleCut: number;
  /** S at the middle cut = entropy of dW's normalised squared singular values. */
  middleEntropy: number;
  /** Numerical rank r of dW. */
  rank: number;
  /** ln(r): the bound on the middle-cut entropy of a rank-r update. */
  middleBound: number;
}

/**
 * Bond entropies of vec(dW)/||dW||_F on the chain rowSites ++ colSites. The amplitude of
 * multi-index (a_1..a_L) is dW[i, j] / ||dW||_F with i, j the row-major (mixed-radix) numbers of
 * the row and column digits, so the state's row-major order is dW's own. The matricisation
 * after site l is then the same buffer reshaped to [D_l, N / D_l], D_l = prod_{i<=l} d_i, and
 * S(l) = -sum_k p_k ln p_k with p_k = s_k^2 / sum s^2 over that reshape's singular values.
 * At the middle cut the reshape is dW itself, so S = H(s^2/||s||^2) <= ln(rank dW).
 * Throws on a zero dW (no state to normalise).
 */
export function entanglementProfile(
  dW: MatrixData,
  shape: Shape,
  options: { maxPrime?: number } = {},
): EntanglementProfile {
  const a = checkMatrix(dW, shape, "dW");
  const [rows, cols] = shape;
  let norm2 = 0;
  for (let i = 0; i < a.length; i++) norm2 += a[i] * a[i];
  if (!(norm2 > 0)) throw new Error("dW is zero: its entanglement profile is undefined");
  const rowSites = primeSites(rows, options.maxPrime);
  const sites = [...rowSites, ...primeSites(cols, options.maxPrime)];
  const total = rows * cols;
  const entropy: number[] = [];
  const bound: number[] = [];
  let left = 1;
  let middleSpectrum: Float64Array | null = null;
  for (let l = 1; l < sites.length; l++) {
    left *= sites[l - 1];
    const right = total / left;
    // Entropy is scale-free (shannonEntropy normalises), so the raw reshape suffices.
    const s2 = squaredSingularValues(a, left, right);
    if (l === rowSites.length) middleSpectrum = s2;
    entropy.push(shannonEntropy(s2));
    bound.push(Math.log(Math.min(left, right)));
  }
  const middleCut = rowSites.length > 0 && rowSites.length < sites.length ? rowSites.length : 0;
  const spectrum = middleSpectrum ?? squaredSingularValues(a, rows, cols);
  const rank = numericalRank(spectrum, rows, cols);
  return {
    sites,
    rowSiteCount: rowSites.length,
    entropy,
    bound,
    middleCut,
    middleEntropy: middleCut > 0 ? entropy[middleCut - 1] : shannonEntropy(spectrum),
    rank,
    middleBound: Math.log(rank),
  };
}

/**
 * Page's mean entanglement entropy of a Haar-random pure state on C^m (x) C^n, m <= n:
 * S_{m,n} = sum_{k=n+1}^{mn} 1/k - (m - 1) / (2n)  (~ ln m - m / (2n) for 1 << m <= n).
 * The reference a structureless (random) update's profile sits at.
 */
export function pageEntropy(m: number, n: number): number {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 1 || n < 1) {
    throw new Error(`Page entropy needs positive integer dimensions, got ${m}, ${n}`);
  }
  if (m > n) [m, n] = [n, m];
  let s = 0;
  // Summed from the small end for accuracy.
  for (let k = m * n; k > n; k--) s += 1 / k;
  return s - (m - 1) / (2 * n);
}
