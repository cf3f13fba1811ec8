import assert from "node:assert/strict";
import { pairedRandomizationTest } from "./randomization.ts";
import { assertClose } from "./approx.ts";

Deno.test("pairedRandomizationTest gives p = 1 for identical runs", () => {
  const a = [0.2, 0.5, 0.9, 0.4, 0.7];
  const r = pairedRandomizationTest(a, [...a], { seed: 3, permutations: 999 });
  assert.equal(r.diff, 0);
  assert.equal(r.p, 1);
});

Deno.test("pairedRandomizationTest gives a small p for a clear difference", () => {
  // 40 queries, run a better on every query by 0.1-0.2: only the 2 all-same-sign patterns
  // out of 2^40 are as extreme, so no random permutation reaches it and p = 1 / (R + 1).
  const b = Array.from({ length: 40 }, (_, i) => 0.3 + 0.01 * (i % 7));
  const a = b.map((x, i) => x + 0.1 + 0.1 * ((i * 37) % 11) / 10);
  const r = pairedRandomizationTest(a, b, { seed: 11, permutations: 999 });
  assert.ok(r.diff > 0.1);
  assert.equal(r.p, 1 / 1000);
});

Deno.test("pairedRandomizationTest approximates the exact sign-flip p-value", () => {
  // d = [1, 2, 3, 4]: of the 16 sign patterns only +-(1,2,3,4) reach |sum| = 10 -> exact p = 2/16.
  // d = [1, 2, 3, -1]: |sum| = 5; by hand, +-2+-3 is in {5, 1, -1, -5} and +-1+-1 in {2, 0, 0, -2},
  // so the 16 sums are 7,5,5,3 | 3,1,1,-1 | 1,-1,-1,-3 | -3,-5,-5,-7: 6 have |sum| >= 5 -> p = 0.375.
  const r = pairedRandomizationTest([1, 2, 3, 4], [0, 0, 0, 0], { seed: 5, permutations: 20000 });
  assertClose(r.p, 0.125, 0.01, "p for [1,2,3,4]");
  const s = pairedRandomizationTest([1, 2, 3, 0], [0, 0, 0, 1], { seed: 5, permutations: 20000 });
  assertClose(s.p, 0.375, 0.015, "p for [1,2,3,-1]");
  // Same seed, same answer.
  assert.deepEqual(pairedRandomizationTest([1, 2, 3, 4], [0, 0, 0, 0], { seed: 5, permutations: 20000 }), r);
});

Deno.test("pairedRandomizationTest rejects bad input", () => {
  assert.throws(() => pairedRandomizationTest([1, 2], [1], { seed: 1 }), /equal length/);
  assert.throws(() => pairedRandomizationTest([1], [1], { seed: 1, permutations: 0 }), /positive integer/);
});
