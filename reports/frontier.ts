/**
 * Pareto frontier of quality against a cost (memory, time).
 * @module
 */
import type { Direction } from "./data.ts";

/** A point: a cost to minimise and a quality to optimise in `direction`. */
export interface CostQuality {
  cost: number;
  quality: number;
}

/**
 * Indices of the non-dominated points: no other point is at most as costly and at least as
 * good with one of the two strictly better. Sorted by cost, so they draw as a staircase line.
 */
export function paretoFrontier(points: readonly CostQuality[], direction: Direction): number[] {
  const better = (a: number, b: number) => (direction === "higher" ? a > b : a < b);
  const order = points.map((_, i) => i).filter((i) =>
    Number.isFinite(points[i].cost) && Number.isFinite(points[i].quality)
  )
    .sort((i, j) =>
      points[i].cost - points[j].cost ||
      (better(points[i].quality, points[j].quality)
        ? -1
        : better(points[j].quality, points[i].quality)
        ? 1
        : 0)
    );
  const out: number[] = [];
  let best: number | undefined;
  for (const i of order) {
    // Cheapest-first: a point joins only if it beats every cheaper (or equally cheap) one.
    if (best === undefined || better(points[i].quality, best)) {
      out.push(i);
      best = points[i].quality;
    }
  }
  return out;
}
