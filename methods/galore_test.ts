import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { galore, GaLoreOptimizer } from "./galore.ts";
import { applyTiny, assertStateRoundTrip } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG, tinyBatch, trainSteps } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("GaLore's optimizer state is the projected size", () => {
  const r = 4;
  const { applied } = applyTiny(galore, { rank: r, targets: "all-linear" });
  const opt = applied.makeOptimizer!({}) as GaLoreOptimizer;
  const expected = applied.trainable.reduce(
    (s, v) => s + 4 * (2 * r * Math.max(...v.shape) + r * Math.min(...v.shape)),
    0,
  );
  assert.equal(opt.stateBytes, expected);
  // Far below AdamW's 8 m n per weight.
  assert.ok(opt.stateBytes < 0.8 * applied.trainable.reduce((s, v) => s + 8 * v.size, 0));
  // No state is full-size: each moment has r rows (left side, m < n) or r columns (right side).
  opt.momentShapes().forEach((shape, i) => {
    const [m, n] = applied.trainable[i].shape;
    assert.deepEqual(shape, m < n ? [r, n] : [m, r]);
  });
  // k, v [8, 16] project on the left; q, o, gate, up [>= 16, 16] and down [16, 24]: see the side rule.
  assert.deepEqual(opt.left.slice(0, 7), [false, true, true, false, false, false, true]);
  opt.dispose();
  applied.dispose();
});

Deno.test("galore: the first update is -lr * alpha * P sign-like(P^T G) (Adam step 1 on the projection)", () => {
  const w = tf.variable(tf.tensor2d([[1, 2, 3, 4], [0, -1, 2, 1]]), true);
  const opt = new GaLoreOptimizer([w], { rank: 1, updateProjGap: 10, scale: 0.5 });
  const g = tf.tensor2d([[3, 0, 4, 0], [1, 0, 1, 0]]);
  const w0 = w.arraySync();
  opt.apply([g], 0.1).dispose();
  const p = opt.projection(0)!.arraySync() as number[][]; // left, [2, 1]
  assert.ok(Math.abs(Math.hypot(p[0][0], p[1][0]) - 1) < 1e-6);
  const gArr = g.arraySync();
  const rProj = [0, 1, 2, 3].map((j) => p[0][0] * gArr[0][j] + p[1][0] * gArr[1][j]);
  const n = rProj.map((x) => x / (Math.abs(x) + 1e-8)); // m-hat / sqrt(v-hat) at t = 1
  const w1 = w.arraySync();
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 4; j++) {
      assert.ok(Math.abs(w1[i][j] - (w0[i][j] - 0.1 * 0.5 * p[i][0] * n[j])) < 1e-5);
    }
  }
  opt.dispose();
});

Deno.test("galore: loss falls; only the target weights move; trainable flags are restored", () => {
  const { model, applied } = applyTiny(galore, { rank: 4, targets: "q+v", updateProjGap: 2 });
  const snapshot = new Map([...model.params].map(([n, v]) => [n, v.dataSync().slice()]));
  const losses = trainSteps(model, applied, 6);
  assert.ok(losses.every(Number.isFinite) && losses[5] < losses[0], `loss did not fall: ${losses}`);
  for (const [name, data] of snapshot) {
    const moved = maxAbsDiff(data, model.param(name).dataSync()) > 0;
    assert.equal(moved, /attn\.[qv]\.weight$/.test(name), `${name} moved: ${moved}`);
  }
  assert.equal(applied.trainable.length, 2 * TINY_CONFIG.nLayers);
  applied.dispose();
  assert.ok([...model.params.values()].every((v) => !v.trainable));
});

Deno.test("galore: the projection refreshes every updateProjGap steps and stays orthonormal", () => {
  const { model, applied } = applyTiny(galore, { rank: 3, targets: "q", updateProjGap: 2 });
  const opt = applied.makeOptimizer!({}) as GaLoreOptimizer;
  const seen: Float32Array[] = [];
  for (let step = 0; step < 5; step++) {
    const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss, applied.trainable);
    opt.apply(applied.trainable.map((v) => grads[v.name]), 1e-2).dispose();
    seen.push(opt.projection(0)!.dataSync().slice() as Float32Array);
  }
  assert.equal(opt.refreshes, 3); // updates 0, 2, 4
  assert.deepEqual(seen[1], seen[0]);
  assert.ok(maxAbsDiff(seen[2], seen[1]) > 1e-6, "projection did not refresh at the gap");
  assert.deepEqual(seen[3], seen[2]);
  const p = opt.projection(0)!;
  assert.ok(maxAbsDiff(tf.matMul(p, p, true, false).dataSync(), tf.eye(3).dataSync()) < 1e-5);
  opt.dispose();
  applied.dispose();
});

Deno.test("galore: rank checks and state round trip", () => {
  assert.throws(
    () => applyTiny(galore, { rank: 9, targets: "k" }),
    /--rank 9 is impossible for layers.0.attn.k/,
  );
  assertStateRoundTrip(galore, { rank: 2, targets: "q+v" });
});
