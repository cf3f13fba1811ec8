import assert from "node:assert/strict";
import { matchByFactor } from "./matching.ts";

const ROWS = [
  { rank: 8, lr: "1e-4", seed: 0, value: 61.0 },
  { rank: 8, lr: "1e-4", seed: 1, value: 60.0 },
  { rank: 8, lr: "3e-4", seed: 0, value: 63.0 },
  { rank: 16, lr: "3e-4", seed: 0, value: 64.5 },
  { rank: 16, lr: "1e-4", seed: 1, value: 60.5 },
  { rank: 16, lr: "1e-4", seed: 0, value: 62.0 },
  // Only at rank 16: dropped, it has no rank-8 twin.
  { rank: 16, lr: "1e-3", seed: 0, value: 50.0 },
];

Deno.test("matchByFactor pairs configurations that differ only in the factor", () => {
  const m = matchByFactor(ROWS, "rank");
  assert.deepEqual(m.levels, [8, 16]);
  assert.deepEqual(m.configs, ['lr="1e-4",seed=0', 'lr="1e-4",seed=1', 'lr="3e-4",seed=0']);
  assert.equal(m.dropped, 1);
  assert.deepEqual(m.groups, [[61.0, 60.0, 63.0], [62.0, 60.5, 64.5]]);
  assert.deepEqual(m.pairs, { a: [61.0, 60.0, 63.0], b: [62.0, 60.5, 64.5] });
});

Deno.test("matchByFactor with three levels gives groups but no pairs", () => {
  const rows = ["lora", "ia3", "prefix"].flatMap((method) =>
    [0, 1].map((seed) => ({ method, seed, value: seed + method.length }))
  );
  const m = matchByFactor(rows, "method");
  assert.deepEqual(m.levels, ["lora", "ia3", "prefix"]);
  assert.deepEqual(m.groups, [[4, 5], [3, 4], [6, 7]]);
  assert.equal(m.pairs, undefined);
});

Deno.test("matchByFactor rejects ambiguous or malformed rows", () => {
  assert.throws(
    () => matchByFactor([...ROWS, { rank: 8, lr: "1e-4", seed: 0, value: 1 }], "rank"),
    /two rows/,
  );
  assert.throws(() => matchByFactor(ROWS, "alpha"), /no factor column "alpha"/);
  assert.throws(
    () => matchByFactor([{ rank: 8, value: 1 }, { rank: 16, lr: 1, value: 2 }], "rank"),
    /columns/,
  );
  assert.throws(() => matchByFactor([{ rank: 8, value: "x" }], "rank"), /non-finite metric/);
});
