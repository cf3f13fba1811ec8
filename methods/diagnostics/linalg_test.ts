import assert from "node:assert/strict";
import { checkMatrix, numericalRank, shannonEntropy, squaredSingularValues } from "./linalg.ts";

Deno.test("squaredSingularValues of a scaled permutation, both Gram orientations", () => {
  // Rows of [[0, 3, 0], [2, 0, 0]] are orthogonal: s^2 = (9, 4); its transpose has the same.
  const wide = Float64Array.of(0, 3, 0, 2, 0, 0);
  const tall = Float64Array.of(0, 2, 3, 0, 0, 0);
  for (const [a, r, c] of [[wide, 2, 3], [tall, 3, 2]] as const) {
    const s2 = squaredSingularValues(a, r, c);
    assert.equal(s2.length, 2);
    assert.ok(Math.abs(s2[0] - 9) < 1e-12 && Math.abs(s2[1] - 4) < 1e-12, `got ${Array.from(s2)}`);
  }
  assert.deepEqual(Array.from(squaredSingularValues(Float64Array.of(3, 4), 1, 2)), [25]);
});

Deno.test("shannonEntropy: uniform ln n, point mass 0, scale-free", () => {
  assert.ok(Math.abs(shannonEntropy([5, 5, 5, 5]) - Math.log(4)) < 1e-15);
  assert.equal(shannonEntropy([0, 7, 0]), 0);
  assert.throws(() => shannonEntropy([0, 0]), /sum to zero/);
});

Deno.test("numericalRank and checkMatrix", () => {
  assert.equal(numericalRank([3, 1, 1e-20], 3, 3), 2);
  assert.equal(numericalRank([0, 0], 2, 2), 0);
  assert.ok(checkMatrix(Float32Array.of(1, 2), [1, 2], "x") instanceof Float64Array);
  assert.throws(
    () => checkMatrix(Float32Array.of(1, 2), [0, 2], "x"),
    /x shape must be two positive integers/,
  );
});
