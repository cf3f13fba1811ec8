import assert from "node:assert/strict";
import { bonferroni, holm } from "./correction.ts";
import { assertClose } from "./approx.ts";

Deno.test("holm on the textbook four-hypothesis example", () => {
  // Wikipedia "Holm-Bonferroni method" example: p = 0.01, 0.04, 0.03, 0.005 at alpha = 0.05
  // rejects H1 and H4 only. By hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1
  // = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06 (R p.adjust(method = "holm")).
  const adj = holm([0.01, 0.04, 0.03, 0.005]);
  [0.03, 0.06, 0.06, 0.02].forEach((e, i) => assertClose(adj[i], e, 1e-12, `adj[${i}]`));
  assert.deepEqual(adj.map((p) => p <= 0.05), [true, false, false, true]);
});

Deno.test("holm is monotone in the raw p-values and capped at 1", () => {
  // By hand: sorted 0.2, 0.3, 0.5 times 3, 2, 1 = 0.6, 0.6, 0.5 -> 0.6, 0.6, 0.6.
  const adj = holm([0.5, 0.2, 0.3]);
  assert.deepEqual(adj.map((p) => +p.toFixed(12)), [0.6, 0.6, 0.6]);
  assert.deepEqual(holm([0.9, 0.8]), [1, 1]);
  assert.deepEqual(holm([]), []);
});

Deno.test("bonferroni multiplies by m and caps at 1", () => {
  const adj = bonferroni([0.01, 0.04, 0.3]);
  [0.03, 0.12, 0.9].forEach((e, i) => assertClose(adj[i], e, 1e-12));
  assert.equal(bonferroni([0.6, 0.1])[0], 1);
});

Deno.test("corrections reject p-values outside [0, 1]", () => {
  assert.throws(() => holm([0.1, 1.2]), /out of \[0, 1\]/);
  assert.throws(() => bonferroni([NaN]), /out of \[0, 1\]/);
});
