/**
 * Small numeric helpers shared by every layer (latency summaries, regression checks, statistics).
 * @module
 */

/** Median: the middle value, or the mean of the two middle values when n is even (NumPy's `median`). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
