import assert from "node:assert/strict";
import { oneWayAnova } from "./anova.ts";
import { assertClose } from "./approx.ts";
import { MUSSELS } from "./testdata.ts";

Deno.test("oneWayAnova matches the scipy.stats.f_oneway docs example (mussels)", () => {
  // scipy docs: f_oneway(tillamook, newport, petersburg, magadan, tvarminne)
  //   -> statistic=7.121019471642447, pvalue=0.0002812242314534544
  const r = oneWayAnova(MUSSELS);
  assertClose(r.f, 7.121019471642447, 1e-10, "F");
  assertClose(r.p, 0.0002812242314534544, 1e-7, "p");
  assert.equal(r.dfBetween, 4);
  assert.equal(r.dfWithin, 34);
});

Deno.test("oneWayAnova sums of squares and eta squared by hand", () => {
  // Groups [1,2,3], [4,5,6]: means 2 and 5, grand 3.5.
  // SSB = 3 (1.5^2) * 2 = 13.5; SSW = 2 + 2 = 4; F = 13.5 / (4 / 4) = 13.5; eta^2 = 13.5 / 17.5.
  const r = oneWayAnova([[1, 2, 3], [4, 5, 6]]);
  assertClose(r.ssBetween, 13.5, 1e-12);
  assertClose(r.ssWithin, 4, 1e-12);
  assertClose(r.f, 13.5, 1e-12);
  assertClose(r.etaSquared, 13.5 / 17.5, 1e-12);
  // With two groups F = t^2, so p equals the pooled two-sample t-test p.
  // scipy 1.17.1: stats.ttest_ind([1,2,3],[4,5,6]).pvalue -> 0.021311641128756713
  assertClose(r.p, 0.021311641128756713, 1e-8, "p");
});

Deno.test("oneWayAnova rejects too few values", () => {
  assert.throws(() => oneWayAnova([[1], [2]]), /more values/);
  assert.throws(() => oneWayAnova([[1, 2]]), /at least 2 groups/);
});
