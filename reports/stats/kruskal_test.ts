import assert from "node:assert/strict";
import { kruskalWallis } from "./kruskal.ts";
import { assertClose } from "./approx.ts";
import { MUSSELS } from "./testdata.ts";

Deno.test("kruskalWallis matches the scipy.stats.kruskal docs examples", () => {
  // scipy docs: stats.kruskal([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])
  //   -> statistic=0.2727272727272734, pvalue=0.6015081344405895
  const r = kruskalWallis([[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]]);
  assertClose(r.h, 0.2727272727272734, 1e-12, "H");
  assertClose(r.p, 0.6015081344405895, 1e-9, "p");
  assert.equal(r.df, 1);
  // scipy docs (heavy ties): stats.kruskal([1, 1, 1], [2, 2, 2], [2, 2])
  //   -> statistic=7.0, pvalue=0.0301973834223185
  const t = kruskalWallis([[1, 1, 1], [2, 2, 2], [2, 2]]);
  assertClose(t.h, 7.0, 1e-12, "H ties");
  assertClose(t.p, 0.0301973834223185, 1e-9, "p ties");
});

Deno.test("kruskalWallis on the f_oneway mussel data matches scipy 1.17.1", () => {
  // scipy 1.17.1: stats.kruskal(tillamook, newport, petersburg, magadan, tvarminne)
  //   -> statistic=16.404810589080256, pvalue=0.0025214014537637097
  const r = kruskalWallis(MUSSELS);
  assertClose(r.h, 16.404810589080256, 1e-12, "H");
  assertClose(r.p, 0.0025214014537637097, 1e-8, "p");
});

Deno.test("kruskalWallis rejects degenerate input", () => {
  assert.throws(() => kruskalWallis([[1, 2]]), /at least 2 groups/);
  assert.throws(() => kruskalWallis([[1, 1], [1, 1]]), /identical/);
  assert.throws(() => kruskalWallis([[1, NaN], [2]]), /non-finite/);
});
