import assert from "node:assert/strict";
import { formatP, judgeDifference, signed } from "./verdict.ts";
import { Rng } from "../../models/util/rng.ts";

const base = {
  a: "64/class",
  b: "16/class",
  direction: "higher" as const,
  margin: 1,
  unit: "accuracy points",
};

Deno.test("a significant paired difference is better or worse, never noise, whatever one run's seed SD", () => {
  // Mean +0.3, tiny spread: significant although one run's seed SD (say 0.5) is larger. The old
  // rule (|diff| < seed SD, or p >= alpha) called this "within seed noise".
  const j = judgeDifference({
    ...base,
    name: "train size 64/class vs 16/class",
    diffs: [0.3, 0.25, 0.35, 0.3],
  });
  assert.equal(j.kind, "better");
  assert.equal(j.better, "64/class");
  assert.ok(j.ci!.lo > 0, "its interval excludes 0");
  assert.doesNotMatch(j.text, /noise/);
  assert.equal(
    j.text,
    "train size 64/class vs 16/class: +0.3 accuracy points (95% CI [0.2, 0.4], paired t, p < 0.001): " +
      "64/class is better; the difference is within ±1.0 accuracy points",
  );
  // Lower is better: a negative difference favours a.
  const lm = judgeDifference({ ...base, name: "x", direction: "lower", diffs: [-2, -3, -2.5, -2.2] });
  assert.equal(lm.kind, "better");
  assert.equal(lm.better, "64/class");
  const worse = judgeDifference({ ...base, name: "x", diffs: [-2, -3, -2.5, -2.2] });
  assert.equal(worse.kind, "worse");
  assert.equal(worse.better, "16/class");
});

Deno.test("equivalence needs TOST inside the margin; 'no significant difference' is not equivalence", () => {
  // SciPy: 90% CI [-0.0488, 0.0728], TOST p 6.7e-8 (see paired_test.ts).
  const eq = judgeDifference({
    ...base,
    name: "quant none vs nf4+dq",
    margin: 0.5,
    digits: 2,
    diffs: [0.10, -0.20, 0.05, 0.15, -0.05, 0.00, 0.10, -0.10, 0.05, 0.02],
  });
  assert.equal(eq.kind, "equivalent");
  assert.equal(eq.better, null);
  assert.match(
    eq.text,
    /\(90% CI \[-0\.05, 0\.07\], TOST p < 0\.001\): equivalent within ±0\.50 accuracy points$/,
  );
  // SciPy: t-test p 0.910 (no difference), 90% CI [-3.0005, 2.6672] reaches beyond ±1: TOST p 0.290.
  const wide = judgeDifference({
    ...base,
    name: "quant none vs nf4+dq",
    diffs: [-5.0, 4.0, 2.5, -3.0, 1.5, -1.0],
  });
  assert.equal(wide.kind, "not shown equivalent");
  assert.equal(
    wide.text,
    "quant none vs nf4+dq: -0.2 accuracy points (paired t p = 0.910): no difference shown, " +
      "and not shown equivalent within ±1.0 accuracy points (90% CI [-3.0, 2.7])",
  );
  assert.ok(Math.abs(wide.equivalence!.p - 0.2896294117653742) < 1e-6);
  const one = judgeDifference({ ...base, name: "r", diffs: [1] });
  assert.equal(one.kind, "not testable");
  assert.match(judgeDifference({ ...base, name: "r", diffs: [] }).text, /no matched runs; not testable/);
});

Deno.test("every verdict agrees with its own interval (random samples, Bonferroni families)", () => {
  const rng = new Rng(7);
  for (let i = 0; i < 400; i++) {
    const n = 2 + rng.int(10);
    const shift = rng.normal() * 2;
    const spread = 0.2 + rng.next() * 3;
    const diffs = Array.from({ length: n }, () => shift + rng.normal() * spread);
    const k = 1 + rng.int(4);
    const j = judgeDifference({ ...base, name: "p", diffs, comparisons: k });
    const excludes0 = j.ci!.lo > 0 || j.ci!.hi < 0;
    assert.equal(j.kind === "better" || j.kind === "worse", excludes0, `sample ${i}`);
    assert.ok(Math.abs(j.ci!.level - (1 - 0.05 / k)) < 1e-12);
    const inside = j.equivalence!.ci.lo > -1 && j.equivalence!.ci.hi < 1;
    if (j.kind === "equivalent") assert.ok(inside, `sample ${i}: equivalent inside the margin`);
    if (j.kind === "not shown equivalent") assert.ok(!inside && !excludes0, `sample ${i}`);
    assert.doesNotMatch(j.text, /noise/);
  }
});

Deno.test("formatP, signed and bad input", () => {
  assert.equal(formatP(0.0499), "p = 0.050");
  assert.equal(formatP(0.0009), "p < 0.001");
  assert.equal(signed(-0.04, 1), "+0.0");
  assert.equal(signed(2.345, 2), "+2.35");
  assert.throws(() => formatP(1.5), /p-value/);
  assert.throws(() => judgeDifference({ ...base, name: "x", margin: 0, diffs: [1, 2] }), /margin > 0/);
});
