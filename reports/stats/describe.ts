/**
 * Descriptive helpers shared by the tests in this folder: mean, variance, quantile, ranks.
 * @module
 */

/** Throw unless `xs` is a non-empty array of finite numbers; `what` names it in the message. */
export function checkSample(xs: readonly number[], what: string, minLength = 1): void {
  if (!Array.isArray(xs)) throw new Error(`${what} must be an array of numbers`);
  if (xs.length < minLength) {
    throw new Error(`${what} needs at least ${minLength} value(s), got ${xs.length}`);
  }
  for (const x of xs) {
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new Error(`${what} contains a non-finite value: ${x}`);
    }
  }
}

/** Arithmetic mean: `sum(x) / n`. */
export function mean(xs: readonly number[]): number {
  checkSample(xs, "mean input");
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample variance with Bessel's correction: `sum((x - mean)^2) / (n - 1)`. */
export function variance(xs: readonly number[]): number {
  checkSample(xs, "variance input", 2);
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return s / (xs.length - 1);
}

/** Sample standard deviation: `sqrt(variance(x))` (n - 1 denominator). */
export function sd(xs: readonly number[]): number {
  return Math.sqrt(variance(xs));
}

/**
 * Quantile with linear interpolation between order statistics (numpy's default, Hyndman-Fan
 * type 7): position `h = (n - 1) q`, value `x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h])`.
 */
export function quantile(xs: readonly number[], q: number): number {
  checkSample(xs, "quantile input");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile q must be in [0, 1], got ${q}`);
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/** Average ranks (1-based; tied values share the mean of their ranks) and the size of every tie group. */
export interface Ranking {
  /** `ranks[i]` is the rank of `xs[i]`. */
  ranks: number[];
  /** Sizes `t` of the groups of equal values (including groups of 1). */
  tieSizes: number[];
}

/**
 * Rank with ties averaged (scipy `rankdata(method="average")`): a run of `t` equal values
 * occupying positions `i+1 .. i+t` of the sorted data all get rank `i + (t + 1) / 2`.
 */
export function rankAverage(xs: readonly number[]): Ranking {
  checkSample(xs, "rank input");
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(xs.length);
  const tieSizes: number[] = [];
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && xs[order[j + 1]] === xs[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    tieSizes.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieSizes };
}

/** Tie term used by rank tests: `sum(t^3 - t)` over tie groups. */
export function tieTerm(tieSizes: readonly number[]): number {
  let s = 0;
  for (const t of tieSizes) s += t ** 3 - t;
  return s;
}
