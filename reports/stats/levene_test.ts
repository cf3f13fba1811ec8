import assert from "node:assert/strict";
import { levene } from "./levene.ts";
import { assertClose } from "./approx.ts";
import { MUSSELS } from "./testdata.ts";

Deno.test("levene (median centre) matches the scipy.stats.levene docs example", () => {
  // scipy docs: a, b, c below; stats.levene(a, b, c)
  //   -> statistic=7.584952754501659, pvalue=0.002431505967249681
  const a = [8.88, 9.12, 9.04, 8.98, 9.0, 9.08, 9.01, 8.85, 9.06, 8.99];
  const b = [8.88, 8.95, 9.29, 9.44, 9.15, 9.58, 8.36, 9.18, 8.67, 9.05];
  const c = [8.95, 9.12, 8.95, 8.85, 9.03, 8.84, 9.07, 8.98, 8.86, 8.98];
  const r = levene([a, b, c]);
  assertClose(r.w, 7.584952754501659, 1e-9, "W");
  assertClose(r.p, 0.002431505967249681, 1e-7, "p");
  assert.equal(r.dfBetween, 2);
  assert.equal(r.dfWithin, 27);
});

Deno.test("levene on unequal group sizes matches scipy 1.17.1", () => {
  // scipy 1.17.1: stats.levene(tillamook, newport, petersburg, magadan, tvarminne)
  //   -> statistic=0.1199559192932723, pvalue=0.9744415772405348
  const r = levene(MUSSELS);
  assertClose(r.w, 0.1199559192932723, 1e-9, "W");
  assertClose(r.p, 0.9744415772405348, 1e-8, "p");
});

Deno.test("levene rejects a single group", () => {
  assert.throws(() => levene([[1, 2, 3]]), /at least 2 groups/);
});
