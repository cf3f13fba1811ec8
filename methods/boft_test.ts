import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { boft, boftBlocks, BoftLinear, butterflyPerm } from "./boft.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { parseMethodConfig } from "./registry.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const eye = (n: number): Mat =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i === j ? 1 : 0));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

/** PEFT's perm2mat: P[i][perm[i]] = 1. */
const permMatrix = (perm: number[]): Mat => perm.map((p) => perm.map((_, j) => (j === p ? 1 : 0)));

function blockDiag(blocks: Mat[]): Mat {
  const n = blocks.reduce((s, b) => s + b.length, 0);
  const out: Mat = Array.from({ length: n }, () => new Array(n).fill(0));
  let o = 0;
  for (const b of blocks) {
    b.forEach((row, i) => row.forEach((x, j) => (out[o + i][o + j] = x)));
    o += b.length;
  }
  return out;
}

Deno.test("boft: identity at init, trains, frozen base, state round trip, merges (1 and 2 factors)", () => {
  checkContract(boft, { targets: "q+k+v+o" });
  checkContract(boft, { targets: "all-linear", blockSize: 2, nButterflyFactor: 3 });
});

Deno.test("boft: PEFT's block_butterfly_perm, worked by hand", () => {
  // n 16, 2 blocks after the permutation, groups of r = 2 inside chunks of 8: groups 0,2,1,3.
  assert.deepEqual(butterflyPerm(16, 2, 2, 1), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  // The first factor (b = nb) leaves the order alone: chunks of bs with 2 groups of bs/2.
  assert.deepEqual(butterflyPerm(8, 2, 2, 1), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(butterflyPerm(6, 1, 1, 0), [0, 1, 2, 3, 4, 5]);
});

Deno.test("boft: M = prod_i P_i diag(R_i) P_i^T (i = m..0) is orthogonal; dW = s ⊙ (W M^T) - W; forward", () => {
  const { model, applied } = applyTiny(boft, { targets: "v", blockSize: 2, nButterflyFactor: 3 });
  const layer = model.linear("layers.0.attn.v") as BoftLinear;
  assert.ok(layer instanceof BoftLinear);
  layer.r.assign(tf.randomNormal(layer.r.shape, 0, 0.7, "float32", 3));
  layer.s.assign(tf.randomUniform(layer.s.shape, 0.5, 1.5, "float32", 4));
  const n = TINY_CONFIG.dim;
  const blocks = layer.blocks().arraySync();
  let m = eye(n);
  blocks.forEach((factor, i) => {
    const p = permMatrix(butterflyPerm(n, 8 / 2 ** i, 1, 2));
    m = matmul(matmul(matmul(p, blockDiag(factor)), transpose(p)), m); // PEFT: M_i @ M
  });
  assert.ok(maxAbsDiff(layer.rotation().dataSync(), m.flat()) < 1e-5);
  assert.ok(maxAbsDiff(matmul(transpose(m), m).flat(), eye(n).flat()) < 1e-5);
  // Each block is orthogonal and equals Cayley of (A - A^T)/2: R (I + S) = I - S.
  const a = (layer.r.arraySync() as number[][][][])[1][3];
  const sk = a.map((row, i) => row.map((x, j) => (x - a[j][i]) / 2));
  const lhs = matmul(blocks[1][3], eye(2).map((row, i) => row.map((x, j) => x + sk[i][j])));
  assert.ok(maxAbsDiff(lhs.flat(), eye(2).map((row, i) => row.map((x, j) => x - sk[i][j])).flat()) < 1e-5);
  const w = layer.base.denseWeight().arraySync();
  const s = (layer.s.arraySync() as number[][]).map((r) => r[0]);
  const merged = matmul(w, transpose(m)).map((row, i) => row.map((x) => x * s[i]));
  assert.ok(
    maxAbsDiff(layer.delta().dataSync(), merged.map((row, i) => row.map((x, j) => x - w[i][j])).flat()) <
      1e-5,
  );
  const x = tf.randomNormal([3, n], 0, 1, "float32", 2) as tf.Tensor2D;
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), matmul(x.arraySync(), transpose(merged)).flat()) < 1e-5);
  applied.dispose();
});

Deno.test("boft: s rescales each output row (R = I: y = s ⊙ W x)", () => {
  const { model, applied } = applyTiny(boft, { targets: "q" });
  const layer = model.linear("layers.0.attn.q") as BoftLinear;
  layer.s.assign(tf.fill(layer.s.shape, 2));
  const x = tf.randomNormal([2, TINY_CONFIG.dim], 0, 1, "float32", 2) as tf.Tensor2D;
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), tf.mul(layer.base.forward(x), 2).dataSync()) < 1e-5);
  applied.dispose();
});

Deno.test("boft: trainable count (m+1) nb bs^2 + out per layer; PEFT tensors; bad sizes are errors", () => {
  const c = TINY_CONFIG;
  const { applied } = applyTiny(boft, { targets: "all-linear" });
  // bs 4: q,k,v,o,gate,up have in 16 (4 blocks of 16 values = 64), down in 24 (96).
  const outs = c.dim + 8 + 8 + c.dim + 2 * c.hiddenDim + c.dim;
  assert.equal(trainableCount(applied), c.nLayers * (6 * 64 + 96 + outs));
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "BOFT");
  assert.equal(e.config.boft_block_size, 4);
  assert.equal(e.config.boft_n_butterfly_factor, 1);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.0.mlp.down_proj.boft_R")!.shape, [
    1,
    6,
    4,
    4,
  ]);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.0.mlp.down_proj.boft_s")!.shape, [c.dim, 1]);
  applied.dispose();
  assert.throws(() => applyTiny(boft, { targets: "q", blockSize: 5 }), /not divisible by --opt blockSize=5/);
  assert.throws(
    () => boftBlocks(24, { blockSize: 2, blockNum: 0, nButterflyFactor: 4 }),
    /not divisible by blockSize \* 2\^\(nButterflyFactor-1\) = 16/,
  );
  assert.throws(() => parseMethodConfig(boft, { blockNum: 4 }), /set exactly one of blockSize and blockNum/);
});
