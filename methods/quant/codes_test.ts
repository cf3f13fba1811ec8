import assert from "node:assert/strict";
import { NF4_BNB_VALUES } from "./bnb_reference.ts";
import { Rng } from "../../models/util/rng.ts";
import {
  DYNAMIC_CODE_8BIT,
  FP4_CODE,
  INT4_CODE,
  maxHalfGap,
  nearestCode,
  NF4_CODE,
  sortCode,
} from "./codes.ts";

Deno.test("NF4 table equals bitsandbytes' values (as float32)", () => {
  assert.deepEqual(Array.from(NF4_CODE), NF4_BNB_VALUES.map(Math.fround));
});

/** Acklam's rational approximation of the standard normal quantile (|rel err| < 1.2e-9). */
function normPpf(p: number): number {
  const a = [
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549671010243339,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

Deno.test("NF4 table matches its construction (bitsandbytes create_normal_map, offset 0.9677083)", () => {
  assert.ok(Math.abs(normPpf(0.975) - 1.959963984540054) < 1e-8, "quantile helper sanity");
  const linspace = (lo: number, hi: number, n: number) =>
    Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const offset = 0.9677083;
  // 8 positive quantiles, 7 negative, and 0; normalised by the max.
  const pos = linspace(offset, 0.5, 9).slice(0, -1).map(normPpf);
  const neg = linspace(offset, 0.5, 8).slice(0, -1).map((p) => -normPpf(p));
  const v = [...pos, 0, ...neg].sort((x, y) => x - y);
  const max = Math.max(...v);
  // torch evaluates linspace in float32, hence ~1e-6 agreement rather than exact.
  v.forEach((x, i) =>
    assert.ok(Math.abs(x / max - NF4_CODE[i]) < 2e-6, `NF4 ${i}: ${x / max} vs ${NF4_CODE[i]}`)
  );
});

Deno.test("FP4 table equals bitsandbytes' code (E2M1, bias 3, normalised by 12), by bit pattern", () => {
  // functional.py get_4bit_type("fp4") before normalisation.
  const bnb = [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3];
  // The same from bitsandbytes tests/test_functional.py test_4bit_quant: bits s e1 e2 p1.
  for (let idx = 0; idx < 16; idx++) {
    const [s, e1, e2, p1] = [(idx >> 3) & 1, (idx >> 2) & 1, (idx >> 1) & 1, idx & 1];
    const exp = e1 * 2 + e2;
    const mag = exp === 0 ? (p1 ? 0.0625 : 0) : 2 ** (-exp + 3 + 1) * (p1 ? 1.5 : 1);
    assert.equal(mag * (s ? -1 : 1), bnb[idx], `bit formula vs table at ${idx}`);
    // The kernel literals (0.66666667 etc.) are 8-digit roundings of bnb[idx] / 12: same float32.
    assert.equal(FP4_CODE[idx], Math.fround(bnb[idx] / 12), `FP4 ${idx}`);
    assert.equal(Math.sign(FP4_CODE[idx]) || (Object.is(FP4_CODE[idx], -0) ? -1 : 1), s ? -1 : 1);
  }
});

Deno.test("dynamic 8-bit map has bitsandbytes' closed-form structure", () => {
  const d = Array.from(DYNAMIC_CODE_8BIT);
  assert.equal(d.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(d[i] > d[i - 1], "strictly ascending");
  assert.equal(d[255], 1);
  assert.equal(d.filter((x) => x === 0).length, 1);
  assert.equal(d.filter((x) => x > 0).length, 128); // 127 fraction values + 1.0
  // Extremes: ±(1 - 0.9/128) = midpoint of the last linspace(0.1, 1, 65) interval; smallest
  // magnitude 1e-6 · (0.1 + 1) / 2.
  assert.equal(d[0], Math.fround(-(1 - 0.9 / 128)));
  assert.equal(d[254], Math.fround(1 - 0.9 / 128));
  assert.equal(d[128], Math.fround(0.55e-6));
  assert.equal(d[126], Math.fround(-0.55e-6));
});

Deno.test("nearestCode picks the nearest table value (brute force check)", () => {
  const rng = new Rng(1);
  for (const table of [NF4_CODE, FP4_CODE, INT4_CODE.map((v) => v / 8), DYNAMIC_CODE_8BIT]) {
    const sc = sortCode(table);
    for (let t = 0; t < 2000; t++) {
      const x = rng.next() * 2.2 - 1.1;
      const k = nearestCode(sc, x);
      const best = Math.min(...Array.from(table, (v) => Math.abs(v - x)));
      assert.ok(Math.abs(table[k] - x) <= best + 1e-12, `x=${x} got ${table[k]}`);
    }
  }
  // Ties go to the smaller value, as bitsandbytes' `x > midpoint` trees do.
  assert.equal(NF4_CODE[nearestCode(sortCode(NF4_CODE), (NF4_CODE[7] + NF4_CODE[8]) / 2)], 0);
});

Deno.test("maxHalfGap: NF4 (1 - 0.6961928) / 2, FP4 (1 - 2/3) / 2, int4 1/2", () => {
  assert.ok(Math.abs(maxHalfGap(NF4_CODE) - (1 - 0.6961928009986877) / 2) < 1e-7);
  assert.ok(Math.abs(maxHalfGap(FP4_CODE) - (1 - 8 / 12) / 2) < 1e-7);
  assert.equal(maxHalfGap(INT4_CODE), 0.5);
});
