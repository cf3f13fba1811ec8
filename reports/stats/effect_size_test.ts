import assert from "node:assert/strict";
import { cliffMagnitude, cliffsDelta, cohensD, pooledSd } from "./effect_size.ts";
import { assertClose } from "./approx.ts";

Deno.test("cliffsDelta by hand on tiny samples", () => {
  // x = [1, 2, 3], y = [2, 4]: pairs (x>y, x<y): 1:(0,2) 2:(0,1) 3:(1,1) -> (1 - 4) / 6 = -0.5.
  const r = cliffsDelta([1, 2, 3], [2, 4]);
  assertClose(r.delta, -0.5, 1e-15);
  assert.equal(r.magnitude, "large");
  // Full separation gives +1; identical samples give 0.
  assert.equal(cliffsDelta([5, 6], [1, 2, 3]).delta, 1);
  assert.equal(cliffsDelta([1, 2], [1, 2]).delta, 0);
  // Agrees with Mann-Whitney: scipy docs males/females U1 = 17, n1 n2 = 20 -> 2 * 17 / 20 - 1 = 0.7.
  assertClose(cliffsDelta([19, 22, 16, 29, 24], [20, 11, 17, 12]).delta, 0.7, 1e-15);
});

Deno.test("cliffMagnitude uses the Romano et al. thresholds", () => {
  assert.equal(cliffMagnitude(0.1), "negligible");
  assert.equal(cliffMagnitude(-0.146), "negligible");
  assert.equal(cliffMagnitude(0.147), "small");
  assert.equal(cliffMagnitude(0.31), "small");
  assert.equal(cliffMagnitude(-0.33), "medium");
  assert.equal(cliffMagnitude(0.474), "large");
});

Deno.test("cohensD and pooledSd by hand", () => {
  // x = [2, 4, 6]: mean 4, var 4; y = [1, 2, 3]: mean 2, var 1.
  // s_p = sqrt((2*4 + 2*1) / 4) = sqrt(2.5); d = 2 / sqrt(2.5) = 1.2649110640673518.
  assertClose(pooledSd([[2, 4, 6], [1, 2, 3]]), Math.sqrt(2.5), 1e-15);
  assertClose(cohensD([2, 4, 6], [1, 2, 3]), 2 / Math.sqrt(2.5), 1e-15);
  assertClose(cohensD([1, 2, 3], [2, 4, 6]), -2 / Math.sqrt(2.5), 1e-15);
  assert.throws(() => cohensD([1, 1], [1, 1]), /constant/);
  assert.throws(() => pooledSd([[1], [2]]), /2 or more/);
});
