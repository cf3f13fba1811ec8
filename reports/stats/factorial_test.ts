import assert from "node:assert/strict";
import {
  alignedRankAnova,
  crossedTerms,
  factorialAnova,
  type FactorialRow,
  normalityTest,
} from "./factorial.ts";
import { assertClose } from "./approx.ts";

// Montgomery, Design and Analysis of Experiments, Example 5.1 (battery life): balanced 3 x 3, n = 4.
const BATTERY = [
  [[130, 155, 74, 180], [34, 40, 80, 75], [20, 70, 82, 58]],
  [[150, 188, 159, 126], [136, 122, 106, 115], [25, 70, 58, 45]],
  [[138, 110, 168, 160], [174, 120, 150, 139], [96, 104, 82, 60]],
];
const batteryRows: FactorialRow[] = BATTERY.flatMap((row, i) =>
  row.flatMap((cell, j) => cell.map((y) => ({ levels: { material: `m${i + 1}`, temp: `t${j}` }, y })))
);

Deno.test("factorialAnova on a balanced design reproduces Montgomery's published two-way table", () => {
  // Published: SS 10683.72 / 39118.72 / 9613.78, error 18230.75 on 27 df; F 7.91, 28.97, 3.56.
  const r = factorialAnova(batteryRows, ["material", "temp"]);
  assert.equal(r.ssType, "II");
  assert.equal(r.balanced, true);
  const [a, b, ab] = r.effects;
  assert.deepEqual(r.effects.map((e) => e.name), ["material", "temp", "material × temp"]);
  assertClose(a.ss, 10683.72, 1e-6, "SS_A");
  assertClose(b.ss, 39118.72, 1e-6, "SS_B");
  assertClose(ab.ss, 9613.78, 1e-6, "SS_AB");
  assertClose(r.error.ss, 18230.75, 1e-9, "SS_E");
  assert.deepEqual([a.df, b.df, ab.df, r.error.df], [2, 2, 4, 27]);
  assert.equal(a.f.toFixed(2), "7.91");
  assert.equal(b.f.toFixed(2), "28.97");
  assert.equal(ab.f.toFixed(2), "3.56");
  assert.equal(ab.p.toFixed(4), "0.0186");
  assertClose(a.partialEtaSquared, 10683.72 / (10683.72 + 18230.75), 1e-6, "partial eta² A");
});

// Same rows as scripts/report_factorial_reference.py (unbalanced; frozen has no rank).
const UNBALANCED: [string, string, string, number][] = [
  ["frozen", "n/a", "none", 41.0],
  ["frozen", "n/a", "none", 43.5],
  ["frozen", "n/a", "none", 40.2],
  ["frozen", "n/a", "nf4", 39.8],
  ["frozen", "n/a", "nf4", 41.1],
  ["frozen", "n/a", "nf4", 38.7],
  ["lora", "4", "none", 55.2],
  ["lora", "4", "none", 57.9],
  ["lora", "4", "none", 54.4],
  ["lora", "4", "nf4", 53.0],
  ["lora", "4", "nf4", 55.6],
  ["lora", "16", "none", 58.1],
  ["lora", "16", "none", 60.3],
  ["lora", "16", "none", 56.9],
  ["lora", "16", "nf4", 57.7],
  ["lora", "16", "nf4", 54.2],
  ["lora", "16", "nf4", 56.5],
  ["dora", "4", "none", 56.0],
  ["dora", "4", "none", 59.1],
  ["dora", "4", "none", 57.3],
  ["dora", "4", "nf4", 52.8],
  ["dora", "4", "nf4", 55.9],
  ["dora", "4", "nf4", 54.0],
  ["dora", "16", "none", 61.2],
  ["dora", "16", "none", 58.4],
];
const FACTORS = ["method", "rank", "quant"];
const rows: FactorialRow[] = UNBALANCED.map(([method, rank, quant, y]) => ({
  levels: { method, rank, quant },
  y,
}));

Deno.test("factorialAnova type II on an unbalanced, partly aliased design matches the NumPy/SciPy reference", () => {
  // python3 scripts/report_factorial_reference.py ("II" lines): SS, df, F, p, partial eta².
  const ref: [string, number, number, number, number, number][] = [
    ["method", 4.123102564102567, 1, 1.471004333855531, 0.24279112717187962, 0.08419689593946242],
    ["rank", 20.310256410256436, 1, 7.246114967238804, 0.01603703825703072, 0.3117129454728626],
    ["quant", 28.251947368421035, 1, 10.079481742858698, 0.00588069099208626, 0.38649087594000014],
    ["method × rank", 0.04740740740739824, 1, 0.01691359859933934, 0.8981460623907662, 0.0010559836322534958],
    ["method × quant", 1.9266666666666552, 1, 0.6873792180764042, 0.4192546223436696, 0.04119156214367136],
    ["rank × quant", 0.3918518518518468, 1, 0.13980146342268948, 0.7133868603427005, 0.008661907257008009],
  ];
  const r = factorialAnova(rows, FACTORS);
  assert.equal(r.balanced, false);
  assertClose(r.error.ss, 44.84666666666668, 1e-9, "SS_E");
  assert.equal(r.error.df, 16);
  assert.equal(r.effects.length, ref.length);
  for (const [k, [name, ss, df, f, p, pe]] of ref.entries()) {
    const e = r.effects[k];
    assert.equal(e.name, name);
    // Method keeps 1 of its 2 df: frozen vs the rest is the same contrast as rank n/a (aliased).
    assert.equal(e.df, df, `${name} df`);
    assertClose(e.ss, ss, 1e-7, `${name} SS`);
    assertClose(e.f, f, 1e-7, `${name} F`);
    assertClose(e.p, p, 1e-6, `${name} p`);
    assertClose(e.partialEtaSquared, pe, 1e-7, `${name} partial eta²`);
  }
  // Residuals sum to zero (intercept in the model) and square-sum to SS_E.
  assertClose(r.residuals.reduce((s, x) => s + x, 0), 0, 1e-9, "residual sum");
  assertClose(r.residuals.reduce((s, x) => s + x * x, 0), r.error.ss, 1e-9, "residual SS");
});

Deno.test("factorialAnova: a fully aliased term has df 0 and no F; no error df is an error naming seeds", () => {
  // variant is a relabelling of method: nothing left for it once method is in the model.
  const alias = rows.map((r) => ({ levels: { ...r.levels, variant: `v-${r.levels.method}` }, y: r.y }));
  const r = factorialAnova(alias, ["method", "variant"], [["method"], ["variant"]]);
  assert.equal(r.effects[1].df, 0);
  assert.ok(Number.isNaN(r.effects[1].f) && Number.isNaN(r.effects[1].p));
  const single = [{ levels: { a: "x" }, y: 1 }, { levels: { a: "y" }, y: 2 }];
  assert.throws(() => factorialAnova(single, ["a"]), /no error degrees of freedom.*add seeds/);
  assert.throws(
    () => factorialAnova([{ levels: {}, y: 1 }, { levels: {}, y: 2 }], ["a"]),
    /no level of factor 'a'/,
  );
});

Deno.test("crossedTerms lists main effects, then every pair", () => {
  assert.deepEqual(crossedTerms(["a", "b", "c"]), [["a"], ["b"], ["c"], ["a", "b"], ["a", "c"], ["b", "c"]]);
  assert.deepEqual(crossedTerms(["a", "b"], false), [["a"], ["b"]]);
});

Deno.test("alignedRankAnova matches the reference ART (align, rank, type II on ranks)", () => {
  // python3 scripts/report_factorial_reference.py ("ART" lines): SS, df, F, p.
  const ref: [string, number, number, number, number][] = [
    ["method", 26.67692307692289, 1, 0.7690644490644438, 0.39348386631372684],
    ["rank", 173.33333333333337, 1, 7.330396475770926, 0.0155324557583804],
    ["quant", 901.9105263157893, 1, 43.20529467381027, 6.412474221761817e-06],
    ["method × rank", 28.166666666666572, 1, 0.8888888888888858, 0.3597979085562977],
    ["method × quant", 98.68518518518545, 1, 1.6325655312386358, 0.219576731741543],
    ["rank × quant", 3.6296296296295623, 1, 0.05503782095157764, 0.8174939564130062],
  ];
  const r = alignedRankAnova(rows, FACTORS);
  for (const [k, [name, ss, df, f, p]] of ref.entries()) {
    const e = r.effects[k];
    assert.equal(e.name, name);
    assert.equal(e.df, df);
    assertClose(e.ss, ss, 1e-7, `${name} ART SS`);
    assertClose(e.f, f, 1e-7, `${name} ART F`);
    assertClose(e.p, p, 1e-6, `${name} ART p`);
  }
});

Deno.test("normalityTest matches scipy.stats.skewtest, kurtosistest and normaltest", () => {
  const skewed = [
    0.1,
    0.2,
    0.2,
    0.3,
    0.3,
    0.4,
    0.5,
    0.5,
    0.6,
    0.7,
    0.8,
    1.0,
    1.1,
    1.3,
    1.6,
    2.0,
    2.6,
    3.5,
    4.9,
    7.2,
    9.8,
  ];
  const t = normalityTest(skewed);
  assertClose(t.zSkew, 3.5788578428592444, 1e-9, "z skew");
  assertClose(t.zKurtosis, 2.6827653207899167, 1e-9, "z kurtosis");
  assertClose(t.k2, 20.00545322582815, 1e-9, "K²");
  assertClose(t.p, 4.527631033544605e-05, 1e-6, "p");
  const resid = factorialAnova(rows, FACTORS).residuals;
  const u = normalityTest(resid);
  assertClose(u.k2, 12.86803674908975, 1e-7, "K² of the residuals");
  assertClose(u.p, 0.0016059844040695098, 1e-6, "p of the residuals");
  assert.throws(() => normalityTest([1, 2, 3]), /at least 20 values/);
});
