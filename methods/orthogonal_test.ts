import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import {
  batchInverse,
  blockDiagonal,
  blockDiagRight,
  cayleyExact,
  cayleyNeumann,
  skewSymmetric,
} from "./orthogonal.ts";
import { maxAbsDiff } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const add = (a: Mat, b: Mat, s = 1): Mat => a.map((row, i) => row.map((x, j) => x + s * b[i][j]));
const eye = (n: number): Mat =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i === j ? 1 : 0));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((row) => row[j]));

/** A random skew-symmetric b x b matrix (plain arrays) and its strict upper triangle, row-major. */
function randomSkew(rng: Rng, b: number, scale: number): { q: Mat; vec: number[] } {
  const q = eye(b).map((row) => row.map(() => 0));
  const vec: number[] = [];
  for (let i = 0; i < b; i++) {
    for (let j = i + 1; j < b; j++) {
      const v = scale * rng.normal();
      q[i][j] = v;
      q[j][i] = -v;
      vec.push(v);
    }
  }
  return { q, vec };
}

Deno.test("skewSymmetric: torch.triu_indices(b, b, 1) order, Q^T = -Q", () => {
  const q = skewSymmetric(tf.tensor2d([[1, 2, 3]]), 3);
  assert.deepEqual(q.arraySync(), [[[0, 1, 2], [-1, 0, 3], [-2, -3, 0]]]);
});

Deno.test("cayleyNeumann: PEFT's series I + 2Q + 2Q^2 + 2Q^3 + Q^4 (5 terms), I + 2Q (2), I (1)", () => {
  const { q, vec } = randomSkew(new Rng(3), 4, 0.2);
  const q2 = matmul(q, q), q3 = matmul(q2, q), q4 = matmul(q3, q);
  const five = add(add(add(add(eye(4), q, 2), q2, 2), q3, 2), q4);
  const skew = skewSymmetric(tf.tensor2d([vec]), 4);
  assert.ok(maxAbsDiff(cayleyNeumann(skew, 5).dataSync(), five.flat()) < 1e-6);
  assert.ok(maxAbsDiff(cayleyNeumann(skew, 2).dataSync(), add(eye(4), q, 2).flat()) < 1e-6);
  assert.deepEqual([...cayleyNeumann(skew, 1).dataSync()], eye(4).flat());
  // PEFT's loop with 3 and 4 terms: I + 2Q + 2Q^2 + Q^3 both.
  const three = add(add(add(eye(4), q, 2), q2, 2), q3);
  assert.ok(maxAbsDiff(cayleyNeumann(skew, 3).dataSync(), three.flat()) < 1e-6);
  assert.ok(maxAbsDiff(cayleyNeumann(skew, 4).dataSync(), three.flat()) < 1e-6);
  // Near-orthogonal for small Q: the error is of order ||Q||^4 (the halved last term), far below ||Q||.
  const small = randomSkew(new Rng(4), 4, 0.02);
  const r = cayleyNeumann(skewSymmetric(tf.tensor2d([small.vec]), 4), 5).arraySync()[0];
  const err = maxAbsDiff(matmul(transpose(r), r).flat(), eye(4).flat());
  assert.ok(err < 1e-5 && err > 0, `orthogonality error ${err}`);
});

Deno.test("cayleyExact: R (I + Q) = I - Q and R^T R = I (det-1 rotation)", () => {
  const rng = new Rng(5);
  const blocks = [randomSkew(rng, 5, 0.8), randomSkew(rng, 5, 2)];
  const r = cayleyExact(skewSymmetric(tf.tensor2d(blocks.map((b) => b.vec)), 5)).arraySync();
  blocks.forEach(({ q }, i) => {
    assert.ok(maxAbsDiff(matmul(r[i], add(eye(5), q)).flat(), add(eye(5), q, -1).flat()) < 1e-5);
    assert.ok(maxAbsDiff(matmul(transpose(r[i]), r[i]).flat(), eye(5).flat()) < 1e-5);
  });
});

Deno.test("batchInverse: inverse of a pivoting-needing matrix and its gradient vs finite differences", () => {
  const a = tf.tensor3d([[[0, 2, 1], [1, 1, 0], [3, 0, 1]]]);
  const inv = batchInverse(a).arraySync()[0];
  assert.ok(maxAbsDiff(matmul(inv, a.arraySync()[0]).flat(), eye(3).flat()) < 1e-6);
  // d/dA sum(C ⊙ A^{-1}) against central differences in float64 (closed-form inverse via our own).
  const c = tf.tensor3d([[[1, -2, 0.5], [0.3, 1, 2], [-1, 0.7, 1.5]]]);
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(batchInverse(x as tf.Tensor3D), c)))(a)
    .arraySync() as number[][][];
  const base = a.arraySync()[0];
  const h = 1e-3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const f = (d: number) => {
        const m = base.map((row) => [...row]);
        m[i][j] += d;
        return tf.tidy(() => tf.sum(tf.mul(batchInverse(tf.tensor3d([m])), c)).dataSync()[0]);
      };
      const fd = (f(h) - f(-h)) / (2 * h);
      assert.ok(
        Math.abs(fd - g[0][i][j]) < 1e-2 * Math.max(1, Math.abs(fd)),
        `d/dA[${i}][${j}]: ${g[0][i][j]} vs ${fd}`,
      );
    }
  }
  assert.throws(() => batchInverse(tf.tensor3d([[[1, 2], [2, 4]]])), /singular/);
});

Deno.test("blockDiagRight: x diag(R_0, R_1) block by block; with transposes; dense block diagonal", () => {
  const r = tf.tensor3d([[[1, 2], [3, 4]], [[0, 1], [-1, 0]]]);
  const x = tf.tensor2d([[1, 1, 2, 3], [0, 1, 0, 1]]);
  const dense: Mat = [[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 1], [0, 0, -1, 0]];
  assert.deepEqual(blockDiagonal(r).arraySync(), dense);
  assert.deepEqual(blockDiagRight(x, r).arraySync(), matmul(x.arraySync(), dense));
  assert.deepEqual(blockDiagRight(x, r, true).arraySync(), matmul(x.arraySync(), transpose(dense)));
  assert.throws(() => blockDiagRight(tf.zeros([1, 5]) as tf.Tensor2D, r), /do not cover 5 columns/);
});
