/**
 * Paired randomization (sign-flip) test on per-query scores.
 * @module
 */
import { Rng } from "../../models/util/rng.ts";
import { checkSample } from "./describe.ts";

/** Options of {@link pairedRandomizationTest}. */
export interface RandomizationOptions {
  /** Seed of the sign-flip stream. */
  seed: number;
  /** Number of random sign-flip permutations R (default 10000). */
  permutations?: number;
}

/** Result of {@link pairedRandomizationTest}. */
export interface RandomizationResult {
  /** Observed `mean(a) - mean(b)`. */
  diff: number;
  /** Two-sided p-value with the +1 correction. */
  p: number;
  permutations: number;
}

/**
 * Two-sided paired randomization test (Fisher; the test ranx and Smucker et al. use for IR
 * runs). Per-query differences `d_i = a_i - b_i`; under H0 each sign is exchangeable, so draw
 * R random sign vectors `s` (seeded {@link Rng}) and count `c = #{ |mean(s * d)| >= |mean(d)| }`;
 * `p = (c + 1) / (R + 1)` (Phipson & Smyth 2010: never 0, valid for Monte Carlo). Identical runs
 * give p = 1. The comparison uses a 1e-12 relative tolerance so float rounding does not
 * exclude permutations that tie the observed statistic.
 */
export function pairedRandomizationTest(
  a: readonly number[],
  b: readonly number[],
  options: RandomizationOptions,
): RandomizationResult {
  checkSample(a, "pairedRandomizationTest a");
  checkSample(b, "pairedRandomizationTest b");
  if (a.length !== b.length) {
    throw new Error(
      `pairedRandomizationTest needs per-query scores of equal length, got ${a.length} and ${b.length}`,
    );
  }
  const permutations = options.permutations ?? 10000;
  if (!Number.isInteger(permutations) || permutations < 1) {
    throw new Error(`pairedRandomizationTest permutations must be a positive integer, got ${permutations}`);
  }
  const n = a.length;
  const d = a.map((x, i) => x - b[i]);
  let sum = 0;
  for (const v of d) sum += v;
  const observed = Math.abs(sum);
  const threshold = observed - 1e-12 * Math.max(observed, 1e-300);
  const rng = new Rng(options.seed);
  let count = 0;
  for (let r = 0; r < permutations; r++) {
    let s = 0;
    // One 32-bit draw gives 32 signs.
    let bits = 0;
    for (let i = 0; i < n; i++) {
      if (i % 32 === 0) bits = rng.nextUint32();
      s += (bits & 1) ? d[i] : -d[i];
      bits >>>= 1;
    }
    if (Math.abs(s) >= threshold) count++;
  }
  return { diff: sum / n, p: (count + 1) / (permutations + 1), permutations };
}
