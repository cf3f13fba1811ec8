import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { openBlas, sgemm } from "./native.ts";
import { Rng } from "./util/rng.ts";

const available = openBlas() !== null;

Deno.test({
  name: "native: sgemm with every transpose combination equals the naive product",
  ignore: !available,
  fn: () => {
    const rng = new Rng(1);
    const [m, n, k] = [5, 7, 3];
    const a = rng.normalArray(m * k);
    const b = rng.normalArray(k * n);
    const at = new Float32Array(k * m);
    const bt = new Float32Array(n * k);
    for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) at[j * m + i] = a[i * k + j];
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) bt[j * k + i] = b[i * n + j];
    const ref = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) ref[i * n + j] += a[i * k + p] * b[p * n + j];
    }
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      const c = new Float32Array(m * n);
      sgemm(ta ? at : a, tb ? bt : b, c, m, n, k, ta, tb);
      for (let i = 0; i < c.length; i++) assert.ok(Math.abs(c[i] - ref[i]) < 1e-5);
    }
  },
});

Deno.test({
  name: "native: batched and broadcast matMul (and its gradients) match the cpu backend",
  ignore: !available,
  fn: async () => {
    const rng = new Rng(2);
    const a = rng.normalArray(3 * 4 * 5);
    const b = rng.normalArray(3 * 5 * 6);
    const run = async (backend: "cpu" | "native") => {
      await initBackend(backend);
      const ta = tf.tensor3d(a, [3, 4, 5]);
      const tb = tf.tensor3d(b, [3, 5, 6]);
      const f = (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.square(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D)));
      // Gradients use both transposed forms (dA = dC B^T, dB = A^T dC).
      const [ga, gb] = tf.grads(f)([ta, tb]);
      // Broadcast batch: [3,4,5] x [1,5,6].
      const bc = tf.matMul(ta, tf.slice(tb, [0, 0, 0], [1, 5, 6]));
      const out = [await f(ta, tb).data(), await ga.data(), await gb.data(), await bc.data()];
      tf.dispose([ta, tb, ga, gb, bc]);
      return out;
    };
    const cpu = await run("cpu");
    const native = await run("native");
    cpu.forEach((x, i) =>
      x.forEach((v, j) => assert.ok(Math.abs(v - native[i][j]) <= 1e-4 * Math.max(1, Math.abs(v))))
    );
  },
});

Deno.test({
  name: "native: row gather (axis 0) equals the cpu backend's, and rejects out-of-range ids",
  ignore: !available,
  fn: async () => {
    const table = new Rng(3).normalArray(6 * 4);
    const ids = [[5, 0], [2, 2]];
    const run = async (backend: "cpu" | "native") => {
      await initBackend(backend);
      const x = tf.tensor2d(table, [6, 4]);
      const i = tf.tensor2d(ids, [2, 2], "int32");
      const out = tf.gather(x, i);
      const ints = tf.gather(tf.tensor1d([7, 8, 9], "int32"), tf.tensor1d([2, 0], "int32"));
      const axis1 = tf.gather(x, tf.tensor1d([3, 1], "int32"), 1); // the wasm kernel's form
      const result = {
        shape: out.shape,
        values: [...await out.data(), ...await ints.data(), ...await axis1.data()],
      };
      assert.throws(() => tf.gather(x, tf.tensor1d([6], "int32")), /index value 6/);
      tf.dispose([x, i, out, ints, axis1]);
      return result;
    };
    assert.deepEqual(await run("native"), await run("cpu"));
  },
});
