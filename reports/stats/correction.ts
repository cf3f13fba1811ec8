/**
 * Multiple-comparison corrections of p-values.
 * @module
 */

function checkPs(ps: readonly number[], what: string): void {
  if (!Array.isArray(ps)) throw new Error(`${what} needs an array of p-values`);
  for (const p of ps) {
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new Error(`${what}: p-value out of [0, 1]: ${p}`);
  }
}

/**
 * Holm step-down adjusted p-values (Holm 1979), in the input order. With the m p-values
 * sorted ascending `p_(1) <= ... <= p_(m)`:
 * `adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`, so adjusted values are monotone in the
 * raw ones. Reject H_(i) at level alpha iff `adj_(i) <= alpha`.
 */
export function holm(ps: readonly number[]): number[] {
  checkPs(ps, "holm");
  const m = ps.length;
  const order = ps.map((_, i) => i).sort((a, b) => ps[a] - ps[b]);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach((idx, j) => {
    running = Math.max(running, Math.min(1, (m - j) * ps[idx]));
    out[idx] = running;
  });
  return out;
}

/** Bonferroni adjusted p-values: `adj_i = min(1, m p_i)`. */
export function bonferroni(ps: readonly number[]): number[] {
  checkPs(ps, "bonferroni");
  return ps.map((p) => Math.min(1, ps.length * p));
}
