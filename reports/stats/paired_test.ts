import assert from "node:assert/strict";
import { pairedT, tCdf, tInterval, tost, tQuantile } from "./paired.ts";

/** |actual - expected| within rel 1e-6 of expected, or 1e-12 absolute. */
function close(actual: number, expected: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= Math.max(1e-12, 1e-6 * Math.abs(expected)),
    `${what}: expected ${expected}, got ${actual}`,
  );
}

// SciPy 1.17.1 reference values, from scripts/report_stats_reference.py (ttest_1samp against 0,
// against -m with alternative="greater" and +m with alternative="less"; confidence_interval).
const CASES = [
  {
    d: [0.8, 1.9, -0.4, 2.6, 1.1, 0.3, 1.7, 0.9],
    m: 1.0,
    t: 3.3250911725968892,
    p: 0.012676143227429786,
    pLower: 0.00019939202894682115,
    pUpper: 0.6267297440541396,
    ci95: [0.32135042143297254, 1.9036495785670275],
    ci90: [0.47861702093073477, 1.746382979069265],
  },
  {
    d: [-5.0, 4.0, 2.5, -3.0, 1.5, -1.0],
    m: 1.0,
    t: -0.11851136578499431,
    p: 0.9102764762917667,
    pLower: 0.2896294117653742,
    pUpper: 0.22228215130129628,
    ci95: [-3.7817655485465074, 3.4484322152131743],
    ci90: [-3.0004994668454636, 2.667166133512129],
  },
  {
    d: [0.10, -0.20, 0.05, 0.15, -0.05, 0.00, 0.10, -0.10, 0.05, 0.02],
    m: 0.5,
    t: 0.36188672930966204,
    p: 0.7257876820048142,
    pLower: 4.3856804181419823e-08,
    pUpper: 6.655539371550457e-08,
    ci95: [-0.06301210670355933, 0.08701210670355933],
    ci90: [-0.048785194400018966, 0.07278519440001896],
  },
];

Deno.test("paired t and TOST agree with SciPy's ttest_1samp", () => {
  for (const [i, c] of CASES.entries()) {
    const r = pairedT(c.d);
    close(r.t, c.t, `case ${i} t`);
    close(r.p, c.p, `case ${i} p`);
    const e = tost(r, c.m);
    close(e.pLower, c.pLower, `case ${i} TOST lower`);
    close(e.pUpper, c.pUpper, `case ${i} TOST upper`);
    close(e.p, Math.max(c.pLower, c.pUpper), `case ${i} TOST p`);
    const ci95 = tInterval(r, 0.95);
    close(ci95.lo, c.ci95[0], `case ${i} 95% lo`);
    close(ci95.hi, c.ci95[1], `case ${i} 95% hi`);
    const ci90 = tInterval(r, 0.9);
    close(ci90.lo, c.ci90[0], `case ${i} 90% lo`);
    close(ci90.hi, c.ci90[1], `case ${i} 90% hi`);
    // TOST at 0.05 passes exactly when the 90% interval is inside (-m, m).
    assert.equal(e.p < 0.05, ci90.lo > -c.m && ci90.hi < c.m, `case ${i} duality`);
  }
});

Deno.test("Student's t quantiles and CDF match SciPy; degenerate samples", () => {
  close(tQuantile(0.975, 4), 2.7764451051977934, "t.ppf(0.975, 4)");
  close(tQuantile(0.995, 11), 3.1058065155392804, "t.ppf(0.995, 11)");
  close(tQuantile(0.05, 2), -2.9199855803537256, "t.ppf(0.05, 2)");
  close(tCdf(1.3, 3), 0.8577662456360515, "t.cdf(1.3, 3)");
  close(tCdf(-2.7, 7), 0.015319513582099606, "t.cdf(-2.7, 7)");
  // Every difference equal: no spread, a certain difference (or none).
  assert.equal(pairedT([2, 2, 2]).p, 0);
  assert.equal(pairedT([0, 0]).p, 1);
  assert.equal(tost(pairedT([0.5, 0.5]), 1).p, 0);
  assert.throws(() => pairedT([1]), /at least 2/);
  assert.throws(() => tost(pairedT([1, 2]), 0), /margin > 0/);
});
