import assert from "node:assert/strict";
import { twoWayAnova } from "./anova2.ts";
import { assertClose } from "./approx.ts";

// Montgomery, Design and Analysis of Experiments (Example 5.1, battery life in hours):
// factor A = plate material (1, 2, 3), factor B = temperature (15, 70, 125 F), n = 4.
// Same data as R package ACSWR `battery` (rdrr.io/cran/ACSWR/man/battery.html).
const BATTERY = [
  [[130, 155, 74, 180], [34, 40, 80, 75], [20, 70, 82, 58]],
  [[150, 188, 159, 126], [136, 122, 106, 115], [25, 70, 58, 45]],
  [[138, 110, 168, 160], [174, 120, 150, 139], [96, 104, 82, 60]],
];

Deno.test("twoWayAnova reproduces Montgomery's battery-life ANOVA table", () => {
  // Published ANOVA for this example (Montgomery, Example 5.1): SS material 10683.72, temperature 39118.72,
  // interaction 9613.78, error 18230.75 (df 27), total 77646.97;
  // F = 7.91 (P = 0.0020), 28.97 (P < 0.0001), 3.56 (P = 0.0186).
  const r = twoWayAnova(BATTERY);
  assertClose(r.a.ss, 10683.72, 1e-6, "SS_A");
  assertClose(r.b.ss, 39118.72, 1e-6, "SS_B");
  assertClose(r.interaction.ss, 9613.78, 1e-6, "SS_AB");
  assertClose(r.error.ss, 18230.75, 1e-9, "SS_E");
  assertClose(r.ssTotal, 77646.97, 1e-6, "SS_T");
  assert.deepEqual([r.a.df, r.b.df, r.interaction.df, r.error.df], [2, 2, 4, 27]);
  assert.equal(r.a.f.toFixed(2), "7.91");
  assert.equal(r.b.f.toFixed(2), "28.97");
  assert.equal(r.interaction.f.toFixed(2), "3.56");
  assert.equal(r.a.p.toFixed(4), "0.0020");
  assert.ok(r.b.p < 0.0001);
  assert.equal(r.interaction.p.toFixed(4), "0.0186");
  // Effect sizes from the published SS: eta^2 = SS / SS_T, partial = SS / (SS + SS_E).
  assertClose(r.a.etaSquared, 10683.72 / 77646.97, 1e-6);
  assertClose(r.b.partialEtaSquared, 39118.72 / (39118.72 + 18230.75), 1e-6);
});

Deno.test("twoWayAnova refuses an unbalanced design", () => {
  const unbalanced = BATTERY.map((row) => row.map((c) => [...c]));
  unbalanced[1][2].pop();
  assert.throws(() => twoWayAnova(unbalanced), /unbalanced design, cell \[1\]\[2\] has 3 values, expected 4/);
  const missing = [BATTERY[0], BATTERY[1].slice(0, 2), BATTERY[2]];
  assert.throws(() => twoWayAnova(missing), /unbalanced design/);
  assert.throws(() => twoWayAnova([[[1], [2]], [[3], [4]]]), /at least 2 replicates/);
});
