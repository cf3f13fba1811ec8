import assert from "node:assert/strict";
import { wilcoxonSignedRank } from "./wilcoxon.ts";
import { assertClose } from "./approx.ts";

// scipy docs example: height differences of cross- vs self-fertilized corn (Darwin, via Fisher).
const D = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75];

Deno.test("wilcoxonSignedRank matches the scipy.stats.wilcoxon docs example", () => {
  // scipy docs: wilcoxon(d) -> statistic=24.0, pvalue=0.041259765625 (exact)
  const r = wilcoxonSignedRank(D);
  assert.equal(r.statistic, 24);
  assert.equal(r.rPlus, 96);
  assert.equal(r.method, "exact");
  assertClose(r.p, 0.041259765625, 1e-12);
  // scipy 1.17.1: wilcoxon(d, method="asymptotic") -> pvalue=0.04088813291185591
  const a = wilcoxonSignedRank(D, undefined, { method: "asymptotic" });
  assertClose(a.p, 0.04088813291185591, 1e-9);
});

Deno.test("wilcoxonSignedRank: paired form, ties, zeros (scipy 1.17.1, defaults)", () => {
  // wilcoxon([1..8], [2,1,5,6,4,9,9,11]) -> 4.0, 0.0546875 (ties: exact sign-flip enumeration)
  const t = wilcoxonSignedRank([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 5, 6, 4, 9, 9, 11]);
  assert.equal(t.statistic, 4);
  assert.equal(t.method, "permutation");
  assertClose(t.p, 0.0546875, 1e-12);
  // wilcoxon([0,2,-1,3,4,0,5,6,-2,7]) -> 3.5, 0.046875 (zeros dropped, "wilcox")
  const z = wilcoxonSignedRank([0, 2, -1, 3, 4, 0, 5, 6, -2, 7]);
  assert.equal(z.n, 8);
  assert.equal(z.statistic, 3.5);
  assertClose(z.p, 0.046875, 1e-12);
  // n = 16 with zeros and ties -> normal approximation:
  // wilcoxon(d2) -> 7.0, 0.004247802613804795; wilcoxon(d2, correction=True) -> 0.004687947199586127
  const d2 = [0, 0, 1, 2, 2, 3, -1, 4, 5, 5, 6, -3, 7, 8, 9, 10];
  const big = wilcoxonSignedRank(d2);
  assert.equal(big.method, "asymptotic");
  assert.equal(big.statistic, 7);
  assertClose(big.p, 0.004247802613804795, 1e-9);
  assertClose(wilcoxonSignedRank(d2, undefined, { correction: true }).p, 0.004687947199586127, 1e-9);
});

Deno.test("wilcoxonSignedRank rejects bad input", () => {
  assert.throws(() => wilcoxonSignedRank([1, 2], [1]), /equal length/);
  assert.throws(() => wilcoxonSignedRank([1, 2], [1, 2]), /all differences are zero/);
});
