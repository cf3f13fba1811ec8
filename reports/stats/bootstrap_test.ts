import assert from "node:assert/strict";
import { bootstrapMeanCI } from "./bootstrap.ts";
import { assertClose } from "./approx.ts";

const SCORES = [0.61, 0.58, 0.72, 0.65, 0.49, 0.7, 0.66, 0.55, 0.63, 0.68, 0.59, 0.71];

Deno.test("bootstrapMeanCI is deterministic for a seed and contains the mean", () => {
  const a = bootstrapMeanCI(SCORES, { seed: 7, resamples: 2000 });
  const b = bootstrapMeanCI(SCORES, { seed: 7, resamples: 2000 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(bootstrapMeanCI(SCORES, { seed: 8, resamples: 2000 }), a);
  // Sample mean by hand: sum 7.57 over 12 scores.
  assertClose(a.mean, 7.57 / 12, 1e-12);
  assert.ok(a.lo < a.mean && a.mean < a.hi, `CI [${a.lo}, ${a.hi}] should contain ${a.mean}`);
  assert.ok(a.lo >= Math.min(...SCORES) && a.hi <= Math.max(...SCORES));
  assert.equal(a.level, 0.95);
});

Deno.test("bootstrapMeanCI width is close to the normal-theory interval", () => {
  // Independent check: the percentile CI of a mean should be near mean +- 1.96 s / sqrt(n)
  // (numpy: 1.96 * np.std(scores) / sqrt(12) = 0.0378, the n-denominator SD the bootstrap
  // resamples from); allow 20% for Monte Carlo and skew.
  const r = bootstrapMeanCI(SCORES, { seed: 1, resamples: 20000 });
  const n = SCORES.length;
  const m = r.mean;
  const sdN = Math.sqrt(SCORES.reduce((s, x) => s + (x - m) ** 2, 0) / n);
  const half = 1.959963984540054 * sdN / Math.sqrt(n);
  assertClose((r.hi - r.lo) / 2, half, 0.2 * half / Math.max(1, half));
});

Deno.test("bootstrapMeanCI rejects bad options", () => {
  assert.throws(() => bootstrapMeanCI([], { seed: 1 }), /at least 1/);
  assert.throws(() => bootstrapMeanCI([1, 2], { seed: 1, resamples: 0 }), /positive integer/);
  assert.throws(() => bootstrapMeanCI([1, 2], { seed: 1, level: 1 }), /level/);
});
