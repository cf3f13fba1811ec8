import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { miss, MissLinear } from "./miss.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

/** Check forward = x (W + dW)^T + b against the base layer, with dW given in plain arrays. */
function assertForward(layer: MissLinear, dw: Mat): void {
  const x = tf.randomNormal([3, layer.inFeatures], 0, 1, "float32", 2) as tf.Tensor2D;
  const want = tf.add(layer.base.forward(x), tf.tensor2d(matmul(x.arraySync(), transpose(dw))));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.dataSync()) < 1e-5);
  assert.ok(maxAbsDiff(layer.delta().dataSync(), dw.flat()) < 1e-5);
}

Deno.test("miss: identity at init, trains, frozen base, state round trip, merges (miss, mini, bat)", () => {
  checkContract(miss, { targets: "q+k+v+o", rank: 4 });
  checkContract(miss, { targets: "mlp", rank: 16, init: "mini", miniR: 4 });
  checkContract(miss, { targets: "q,v,down", rank: 4, init: "bat" });
});

Deno.test("miss: dW[o][j] = M[j mod r][o], the last partial block cut (PEFT's padded forward and merge)", () => {
  const { model, applied } = applyTiny(miss, { targets: "down", rank: 16 });
  const layer = model.linear("layers.0.mlp.down") as MissLinear; // in 24 = 16 + 8
  layer.block.assign(tf.randomNormal(layer.block.shape, 0, 1, "float32", 5));
  const m = layer.block.arraySync() as Mat;
  const dw = Array.from(
    { length: layer.outFeatures },
    (_, o) => Array.from({ length: 24 }, (_, j) => m[j % 16][o]),
  );
  assertForward(layer, dw);
  applied.dispose();
});

Deno.test("miss mini: the [r, miniR] shard repeated along the outputs", () => {
  const { model, applied } = applyTiny(miss, { targets: "v", rank: 4, init: "mini", miniR: 2 });
  const layer = model.linear("layers.0.attn.v") as MissLinear;
  layer.block.assign(tf.randomNormal(layer.block.shape, 0, 1, "float32", 6));
  const m = layer.block.arraySync() as Mat;
  const dw = Array.from({ length: 8 }, (_, o) => Array.from({ length: 16 }, (_, j) => m[j % 4][o % 2]));
  assertForward(layer, dw);
  applied.dispose();
});

Deno.test("miss bat: every r x r block W_ij becomes W_ij B_i + B_i", () => {
  const r = 4;
  const { model, applied } = applyTiny(miss, { targets: "v", rank: r, init: "bat" });
  const layer = model.linear("layers.1.attn.v") as MissLinear;
  layer.block.assign(tf.randomNormal(layer.block.shape, 0, 0.5, "float32", 7));
  const b = layer.block.arraySync() as number[][][];
  const w = layer.base.denseWeight().arraySync();
  const dw: Mat = w.map((row) => row.map(() => 0));
  for (let i = 0; i < 8 / r; i++) {
    for (let j = 0; j < 16 / r; j++) {
      const wij = w.slice(i * r, i * r + r).map((row) => row.slice(j * r, j * r + r));
      const d = matmul(wij, b[i]).map((row, a) => row.map((x, c) => x + b[i][a][c]));
      d.forEach((row, a) => row.forEach((x, c) => (dw[i * r + a][j * r + c] = x)));
    }
  }
  assertForward(layer, dw);
  applied.dispose();
});

Deno.test("miss: trainable counts r out / r miniR / r out; export; bad shapes are errors", () => {
  const c = TINY_CONFIG;
  const outs = c.dim + 8 + 8 + c.dim;
  const a = applyTiny(miss, { targets: "attn", rank: 4 });
  assert.equal(trainableCount(a.applied), c.nLayers * 4 * outs);
  const e = a.applied.peftExport!();
  assert.equal(e.config.peft_type, "MISS");
  assert.equal(e.config.init_weights, true);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.0.self_attn.k_proj.miss_block")!.shape, [
    4,
    8,
  ]);
  a.applied.dispose();
  const mini = applyTiny(miss, { targets: "attn", rank: 4, init: "mini", miniR: 8 });
  assert.equal(trainableCount(mini.applied), c.nLayers * 4 * 4 * 8);
  assert.equal(mini.applied.peftExport!().config.init_weights, "mini");
  mini.applied.dispose();
  const bat = applyTiny(miss, { targets: "attn", rank: 4, init: "bat" });
  assert.equal(trainableCount(bat.applied), c.nLayers * 4 * outs);
  bat.applied.dispose();
  assert.throws(() => applyTiny(miss, { targets: "v", rank: 3, init: "bat" }), /divisible into 3x3 blocks/);
  assert.throws(
    () => applyTiny(miss, { targets: "v", init: "mini", miniR: 3 }),
    /not divisible by --opt miniR=3/,
  );
});
