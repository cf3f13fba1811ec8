import assert from "node:assert/strict";
import { describeComparison, formatP, withinSeedNoise } from "./verdict.ts";

Deno.test("describeComparison writes the documented sentence", () => {
  assert.equal(
    describeComparison({ name: "rank 16 vs 8", diff: 0.8, p: 0.001, pAdjusted: 0.003, cliffsDelta: 0.31 }),
    "rank 16 vs 8: +0.8 accuracy points, p = 0.003 after Holm, Cliff's delta 0.31 (small)",
  );
  assert.equal(
    describeComparison({ name: "ia3 vs lora", diff: -2.345, p: 0.0004, digits: 2, unit: "F1 points" }),
    "ia3 vs lora: -2.35 F1 points, p < 0.001",
  );
  assert.equal(describeComparison({ name: "x", diff: -0.04 }), "x: +0.0 accuracy points");
});

Deno.test("describeComparison flags differences within seed noise", () => {
  // |diff| 0.3 < seed SD 0.5 -> noise even though p is small.
  assert.equal(
    describeComparison({ name: "lr 3e-4 vs 1e-4", diff: 0.3, p: 0.01, seedSd: 0.5 }),
    "lr 3e-4 vs 1e-4: +0.3 accuracy points, p = 0.010, within seed noise",
  );
  // Not significant after correction -> noise.
  assert.ok(withinSeedNoise({ diff: 2, p: 0.01, pAdjusted: 0.08 }));
  // Large and significant -> not noise.
  assert.ok(!withinSeedNoise({ diff: 2, p: 0.01, seedSd: 0.5 }));
  // Nothing to judge by -> not flagged.
  assert.ok(!withinSeedNoise({ diff: 0.1 }));
});

Deno.test("formatP and bad input", () => {
  assert.equal(formatP(0.0499), "p = 0.050");
  assert.equal(formatP(0.0009), "p < 0.001");
  assert.throws(() => formatP(1.5), /p-value/);
  assert.throws(() => describeComparison({ name: "x", diff: NaN }), /finite diff/);
});
