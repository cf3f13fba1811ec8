/**
 * Test helper: relative/absolute closeness assertion.
 * @module
 */
import assert from "node:assert/strict";

/** Assert `|actual - expected| <= tol * max(1, |expected|)`. */
export function assertClose(actual: number, expected: number, tol = 1e-9, what = "value"): void {
  const ok = Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected));
  assert.ok(ok, `${what}: expected ${expected}, got ${actual} (tol ${tol})`);
}
