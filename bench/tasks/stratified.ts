/**
 * A seeded stratified subset of a labelled split, for `--max-eval N` on classification: the first
 * N items of a file sorted by label are one or two classes, not a sample. Each class gets its
 * proportional share of N (largest remainders break the rounding, ties to the larger class, then
 * the earlier label), drawn without replacement from a seeded shuffle of that class; the chosen
 * indices come back in split order.
 * @module
 */
import type { Rng } from "../../models/util/rng.ts";

/**
 * Indices of a stratified sample of `n` items from `labels` (one label per item), drawn with
 * `rng`. `n >= labels.length` returns every index; `n` must be a non-negative integer.
 */
export function stratifiedSubset(labels: readonly string[], n: number, rng: Rng): number[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`stratified subset size must be a non-negative integer, got ${n}`);
  }
  const total = labels.length;
  if (n >= total) return labels.map((_, i) => i);
  const byClass = new Map<string, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const classes = [...byClass.entries()].map(([label, idx], order) => {
    const exact = (n * idx.length) / total;
    return { label, idx, order, take: Math.floor(exact), rem: exact - Math.floor(exact) };
  });
  let left = n - classes.reduce((s, c) => s + c.take, 0);
  for (
    const c of [...classes].sort((a, b) => b.rem - a.rem || b.idx.length - a.idx.length || a.order - b.order)
  ) {
    if (left === 0) break;
    c.take++;
    left--;
  }
  const chosen: number[] = [];
  // One stream per class (by label), so a class's draw does not depend on the other classes.
  for (const c of classes) chosen.push(...rng.fork(`class:${c.label}`).shuffle([...c.idx]).slice(0, c.take));
  return chosen.sort((a, b) => a - b);
}
