import assert from "node:assert/strict";
import { capSplit, hashSplit, subsetTrain } from "./split.ts";
import type { ClassificationExample } from "./types.ts";

// 1000 examples, labels a (600), b (300), c (100): sizes chosen so per-class limits are known.
const data: ClassificationExample[] = Array.from({ length: 1000 }, (_, i) => ({
  id: `ex${i}`,
  text: `text ${i}`,
  label: i < 600 ? "a" : i < 900 ? "b" : "c",
}));

Deno.test("subsetTrain: smaller subsets are nested in larger ones", () => {
  const s300 = subsetTrain(data, { trainSize: 300 }, 7);
  const s500 = subsetTrain(data, { trainSize: 500 }, 7);
  assert.equal(s300.length, 300);
  assert.equal(new Set(s300.map((e) => e.id)).size, 300);
  const big = new Set(s500.map((e) => e.id));
  assert.ok(s300.every((e) => big.has(e.id)));
});

Deno.test("subsetTrain: same split seed gives the same subset regardless of input order", () => {
  const a = subsetTrain(data, { trainSize: 50 }, 7).map((e) => e.id);
  const b = subsetTrain([...data].reverse(), { trainSize: 50 }, 7).map((e) => e.id);
  assert.deepEqual(a, b);
  const c = subsetTrain(data, { trainSize: 50 }, 8).map((e) => e.id);
  assert.notDeepEqual(new Set(a), new Set(c));
});

Deno.test("subsetTrain: not just the first rows", () => {
  const ids = subsetTrain(data, { trainSize: 100 }, 7).map((e) => Number(e.id.slice(2)));
  assert.ok(ids.some((i) => i >= 500), "a seeded permutation reaches the second half");
});

Deno.test("subsetTrain per class: exact counts, nested per class", () => {
  const s10 = subsetTrain(data, { trainPerClass: 10 }, 7);
  const s50 = subsetTrain(data, { trainPerClass: 50 }, 7);
  for (const l of ["a", "b", "c"]) assert.equal(s10.filter((e) => e.label === l).length, 10);
  const big = new Set(s50.map((e) => e.id));
  assert.ok(s10.every((e) => big.has(e.id)));
});

Deno.test("subsetTrain: too large a request names the available count", () => {
  assert.throws(
    () => subsetTrain(data, { trainSize: 1001 }, 7),
    /only 1000 examples; use --train-size 1000 or less/,
  );
  assert.throws(
    () => subsetTrain(data, { trainPerClass: 101 }, 7),
    /label "c" has only 100 train examples; use --train-per-class 100 or less/,
  );
  assert.throws(() => subsetTrain(data, { trainSize: 5, trainPerClass: 5 }, 7), /only one/);
  assert.throws(() => subsetTrain([...data, data[0]], { trainSize: 5 }, 7), /duplicate example id "ex0"/);
});

Deno.test("capSplit: fixed seeded, nested caps", () => {
  const c100 = capSplit(data, 100, "t"), c200 = capSplit(data, 200, "t");
  assert.equal(c100.length, 100);
  const big = new Set(c200.map((e) => e.id));
  assert.ok(c100.every((e) => big.has(e.id)));
  assert.equal(capSplit(data, undefined, "t").length, 1000);
});

Deno.test("hashSplit: ~10/10/80 and seedless", () => {
  const counts = { train: 0, dev: 0, test: 0 };
  for (let i = 0; i < 20000; i++) counts[hashSplit(String(i).padStart(8, "0"))]++;
  assert.ok(Math.abs(counts.test / 20000 - 0.1) < 0.01, JSON.stringify(counts));
  assert.ok(Math.abs(counts.dev / 20000 - 0.1) < 0.01, JSON.stringify(counts));
  assert.equal(hashSplit("02086723"), hashSplit("02086723"));
});
