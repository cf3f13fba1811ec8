import assert from "node:assert/strict";
import { significanceSuperscripts } from "./superscripts.ts";

// 30 queries. "lora-r16" beats both others on every query; "lora-r8" and "ia3" are equal on
// average (differences alternate +-0.01), so neither beats the other.
const BASE = Array.from({ length: 30 }, (_, i) => 0.4 + 0.02 * (i % 5));
const RUNS = {
  "lora-r16": BASE.map((x) => x + 0.15),
  "lora-r8": BASE.map((x, i) => x + (i % 2 ? 0.01 : -0.01)),
  "ia3": BASE,
};

Deno.test("significanceSuperscripts marks only the clearly better run", () => {
  const { rows, pairs } = significanceSuperscripts(RUNS, { seed: 42, permutations: 2000 });
  assert.deepEqual(rows.map((r) => [r.name, r.letter, r.beats]), [
    ["lora-r16", "a", ["b", "c"]],
    ["lora-r8", "b", []],
    ["ia3", "c", []],
  ]);
  assert.equal(pairs.length, 3);
  // Holm never lowers a p-value.
  for (const p of pairs) assert.ok(p.pAdjusted >= p.p);
  // Same seed, same table.
  assert.deepEqual(significanceSuperscripts(RUNS, { seed: 42, permutations: 2000 }).rows, rows);
});

Deno.test("significanceSuperscripts with Bonferroni and a strict alpha", () => {
  // With R = 99 the smallest possible p is 1/100; Bonferroni over 3 pairs makes it 0.03 > 0.01.
  const { rows } = significanceSuperscripts(RUNS, {
    seed: 1,
    permutations: 99,
    correction: "bonferroni",
    alpha: 0.01,
  });
  assert.ok(rows.every((r) => r.beats.length === 0));
});

Deno.test("significanceSuperscripts rejects a single run", () => {
  assert.throws(() => significanceSuperscripts({ a: [1, 2] }, { seed: 1 }), /at least 2 runs/);
});
