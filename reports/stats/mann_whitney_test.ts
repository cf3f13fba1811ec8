import assert from "node:assert/strict";
import { mannWhitneyExactSf, mannWhitneyU } from "./mann_whitney.ts";
import { assertClose } from "./approx.ts";

Deno.test("mannWhitneyU matches the scipy.stats.mannwhitneyu docs example", () => {
  // scipy docs: males = [19, 22, 16, 29, 24], females = [20, 11, 17, 12]
  //   mannwhitneyu(males, females) -> statistic=17.0, pvalue=0.1111111111111111 (exact)
  //   method="asymptotic" -> pvalue=0.11134688653314041
  const males = [19, 22, 16, 29, 24];
  const females = [20, 11, 17, 12];
  const r = mannWhitneyU(males, females);
  assert.equal(r.u, 17);
  assert.equal(r.method, "exact");
  assertClose(r.p, 0.1111111111111111, 1e-12, "exact p");
  const a = mannWhitneyU(males, females, { method: "asymptotic" });
  assertClose(a.p, 0.11134688653314041, 1e-9, "asymptotic p");
});

Deno.test("mannWhitneyU: exact with one small sample, normal approx with ties or large samples (scipy 1.17.1)", () => {
  // stats.mannwhitneyu([12.1, 9.3, 15.2], [10.5, ..., 23.0]) -> 6.0, 0.1010989010989011 (exact: n1 = 3)
  const e = mannWhitneyU([12.1, 9.3, 15.2], [
    10.5,
    11.1,
    13.4,
    14.8,
    16.0,
    17.3,
    18.9,
    19.5,
    20.2,
    21.7,
    22.4,
    23.0,
  ]);
  assert.equal(e.u, 6);
  assert.equal(e.method, "exact");
  assertClose(e.p, 0.1010989010989011, 1e-12);
  // Ties -> asymptotic with tie and continuity correction:
  // stats.mannwhitneyu([1,2,2,3,4,5,5,6], [3,4,4,6,7,8,8,9,10]) -> 12.0, 0.022974224429824126
  const t = mannWhitneyU([1, 2, 2, 3, 4, 5, 5, 6], [3, 4, 4, 6, 7, 8, 8, 9, 10]);
  assert.equal(t.u, 12);
  assert.equal(t.method, "asymptotic");
  assertClose(t.p, 0.022974224429824126, 1e-9);
  // Both samples > 8, no ties -> asymptotic:
  // x = [0.1 i^2 + 0.05, i=1..10], y = [0.7 i + 0.33, i=1..9]; mannwhitneyu(x, y) -> 40.0, 0.7133031738784577
  const x = Array.from({ length: 10 }, (_, i) => 0.1 * (i + 1) ** 2 + 0.05);
  const y = Array.from({ length: 9 }, (_, i) => 0.7 * (i + 1) + 0.33);
  const l = mannWhitneyU(x, y);
  assert.equal(l.u, 40);
  assert.equal(l.method, "asymptotic");
  assertClose(l.p, 0.7133031738784577, 1e-9);
});

Deno.test("mannWhitneyU method exact on tied data follows scipy's exact path: floor(U) (scipy 1.17.1)", () => {
  // Reference values: python3 -c "import scipy.stats as s; print(s.mannwhitneyu(x, y, method='exact'))",
  // scipy 1.17.1 (computed once; scipy casts U to int64 before the exact sf).
  const cases: [number[], number[], number, number][] = [
    // Issue #18's case: rounding U up gave 0.030303..., scipy 0.05194805194805195.
    [[1, 0, 5, 1, 6], [5, 8, 11, 11, 7, 4], 3.5, 0.05194805194805195],
    [[1, 2, 2, 3], [2, 3, 4, 5, 5], 2.5, 0.1111111111111111],
    [[3, 3, 3], [3, 4, 5], 1.5, 0.4],
    [[1, 2, 2, 3, 4, 5, 5, 6], [3, 4, 4, 6, 7, 8, 8, 9, 10], 12, 0.02064993829699712],
    [[1, 1, 2], [1, 2, 2], 3, 0.7],
    // All values equal: U = n1 n2 / 2 = 4.5, p clipped to 1 (the asymptotic path refuses this).
    [[1, 1, 1], [1, 1, 1], 4.5, 1],
    // No ties (U is an integer, floor changes nothing).
    [[1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5, 5.5], 6, 0.4126984126984127],
    [[10, 20, 30], [5, 15, 25, 35], 6, 1],
  ];
  for (const [x, y, u, p] of cases) {
    const r = mannWhitneyU(x, y, { method: "exact" });
    assert.equal(r.method, "exact");
    assert.equal(r.u, u, `U for ${x} vs ${y}`);
    assertClose(r.p, p, 1e-12, `p for ${x} vs ${y}`);
  }
});

Deno.test("mannWhitneyExactSf by hand for m = n = 2", () => {
  // The 6 arrangements of 2 x's among 4 give U = 0, 1, 2, 2, 3, 4.
  assertClose(mannWhitneyExactSf(4, 2, 2), 1 / 6, 1e-15);
  assertClose(mannWhitneyExactSf(3, 2, 2), 2 / 6, 1e-15);
  assertClose(mannWhitneyExactSf(2, 2, 2), 4 / 6, 1e-15);
  assert.equal(mannWhitneyExactSf(0, 2, 2), 1);
  assert.equal(mannWhitneyExactSf(5, 2, 2), 0);
});

Deno.test("mannWhitneyU rejects bad input", () => {
  assert.throws(() => mannWhitneyU([], [1]), /x needs at least 1/);
  assert.throws(() => mannWhitneyU([1, 1], [1, 1], { method: "asymptotic" }), /identical/);
});
