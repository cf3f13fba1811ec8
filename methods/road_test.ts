import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { road, RoadLinear } from "./road.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

Deno.test("road: identity at init, trains, frozen base, state round trip, merges (each variant)", () => {
  checkContract(road, { targets: "q+k+v+o", groupSize: 8 });
  checkContract(road, { targets: "mlp", groupSize: 4, variant: "road_2" });
  checkContract(road, { targets: "q,v", groupSize: 8, variant: "road_4" });
});

Deno.test("road_1: R is the paper's block of scaled 2D rotations [[a cos t, -a sin t], [a sin t, a cos t]] on (k, k+g/2)", () => {
  const g = 4;
  const { model, applied } = applyTiny(road, { targets: "v", groupSize: g });
  const layer = model.linear("layers.0.attn.v") as RoadLinear;
  const out = layer.outFeatures; // 8: 2 groups, 2 pairs each, 4 angles
  const theta = [0.3, -1.1, 2.0, 0.7];
  const alpha = [1.5, 0.5, 1, 2];
  layer.theta.assign(tf.tensor1d(theta));
  layer.alpha.assign(tf.tensor1d(alpha));
  const r: Mat = Array.from({ length: out }, () => new Array(out).fill(0));
  for (let grp = 0; grp < out / g; grp++) {
    for (let k = 0; k < g / 2; k++) {
      const [i, j] = [grp * g + k, grp * g + k + g / 2];
      const [t, a] = [theta[grp * (g / 2) + k], alpha[grp * (g / 2) + k]];
      r[i][i] = a * Math.cos(t);
      r[i][j] = -a * Math.sin(t);
      r[j][i] = a * Math.sin(t);
      r[j][j] = a * Math.cos(t);
    }
  }
  assert.ok(maxAbsDiff(layer.rotation().dataSync(), r.flat()) < 1e-6);
  const w = layer.base.denseWeight().arraySync();
  const rw = matmul(r, w);
  assert.ok(
    maxAbsDiff(layer.delta().dataSync(), rw.map((row, i) => row.map((x, j) => x - w[i][j])).flat()) < 1e-5,
  );
  const x = tf.randomNormal([3, TINY_CONFIG.dim], 0, 1, "float32", 2) as tf.Tensor2D;
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), matmul(x.arraySync(), transpose(rw)).flat()) < 1e-5);
  // With alpha = 1 the map is a rotation: it keeps every output vector's norm.
  layer.alpha.assign(tf.onesLike(layer.alpha));
  const y = layer.forward(x).arraySync(), h = layer.base.forward(x).arraySync();
  y.forEach((row, i) => assert.ok(Math.abs(Math.hypot(...row) - Math.hypot(...h[i])) < 1e-4));
  applied.dispose();
});

Deno.test("road_4: c1 = alpha_1 cos theta_1 from each group's first g values, c2 = alpha_2 sin theta_2 from the next g", () => {
  const g = 4;
  const { model, applied } = applyTiny(road, { targets: "v", groupSize: g, variant: "road_4" });
  const layer = model.linear("layers.0.attn.v") as RoadLinear;
  const theta = Array.from({ length: 16 }, (_, i) => 0.1 * i - 0.7);
  const alpha = Array.from({ length: 16 }, (_, i) => 1 + 0.05 * i);
  layer.theta.assign(tf.tensor1d(theta));
  layer.alpha.assign(tf.tensor1d(alpha));
  // Output 1 (group 0, first half, partner 3): y_1 = c1_1 h_1 - c2_1 h_3 with c1 from index 1, c2 from 4 + 1.
  const r = layer.rotation().arraySync();
  assert.ok(Math.abs(r[1][1] - alpha[1] * Math.cos(theta[1])) < 1e-6);
  assert.ok(Math.abs(r[1][3] + alpha[5] * Math.sin(theta[5])) < 1e-6);
  // Output 6 (group 1, second half, partner 4): c1 from 8 + 2, c2 from 12 + 2.
  assert.ok(Math.abs(r[6][6] - alpha[10] * Math.cos(theta[10])) < 1e-6);
  assert.ok(Math.abs(r[6][4] - alpha[14] * Math.sin(theta[14])) < 1e-6);
  applied.dispose();
});

Deno.test("road: trainable count out / 2 out / 4 out for both theta and alpha together; export; bad group size", () => {
  const c = TINY_CONFIG;
  const outs = c.nLayers * (c.dim + 8 + 8 + c.dim);
  for (const [variant, k] of [["road_1", 1], ["road_2", 2], ["road_4", 4]] as const) {
    const { applied } = applyTiny(road, { targets: "attn", groupSize: 8, variant });
    assert.equal(trainableCount(applied), k * outs);
    applied.dispose();
  }
  const { applied } = applyTiny(road, { targets: "q", groupSize: 8 });
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "ROAD");
  assert.equal(e.config.variant, "road_1");
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.0.self_attn.q_proj.road_theta")!.shape, [8]);
  applied.dispose();
  assert.throws(
    () => applyTiny(road, { targets: "q" }),
    /out_features 16 of layers.0.attn.q is not divisible by --opt groupSize=64/,
  );
});
