import assert from "node:assert/strict";
import { stratifiedSubset } from "./stratified.ts";
import { Rng } from "../../models/util/rng.ts";

// A split sorted by label, as files often are: 50 'a', 30 'b', 20 'c'.
const labels = [...Array(50).fill("a"), ...Array(30).fill("b"), ...Array(20).fill("c")];

Deno.test("stratified subset keeps each class's share (largest remainder), unlike the first N", () => {
  const count = (idx: number[]) => {
    const m: Record<string, number> = {};
    for (const i of idx) m[labels[i]] = (m[labels[i]] ?? 0) + 1;
    return m;
  };
  assert.deepEqual(count(stratifiedSubset(labels, 10, new Rng(1))), { a: 5, b: 3, c: 2 });
  // 7 of 100: exact shares 3.5, 2.1, 1.4 -> floors 3, 2, 1, one left for the largest remainder (a).
  assert.deepEqual(count(stratifiedSubset(labels, 7, new Rng(1))), { a: 4, b: 2, c: 1 });
  // What the first N would have scored: one class only.
  assert.deepEqual(count(labels.slice(0, 10).map((_, i) => i)), { a: 10 });
});

Deno.test("stratified subset: seeded, sorted, distinct; different seeds draw different items; n >= size is all", () => {
  const a = stratifiedSubset(labels, 20, new Rng(3));
  assert.deepEqual(a, stratifiedSubset(labels, 20, new Rng(3)));
  assert.deepEqual(a, [...a].sort((x, y) => x - y));
  assert.equal(new Set(a).size, 20);
  assert.notDeepEqual(a, stratifiedSubset(labels, 20, new Rng(4)));
  assert.equal(stratifiedSubset(labels, 100, new Rng(3)).length, 100);
  assert.deepEqual(stratifiedSubset(["x", "y"], 5, new Rng(0)), [0, 1]);
  assert.deepEqual(stratifiedSubset(labels, 0, new Rng(0)), []);
  assert.throws(() => stratifiedSubset(labels, 2.5, new Rng(0)), /non-negative integer, got 2.5/);
});
