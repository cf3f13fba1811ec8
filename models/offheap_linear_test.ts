import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { openBlas, STORED_TILE_FLOATS } from "./native.ts";
import { OffHeapLinear, storedGather, storedLinear } from "./offheap_linear.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "./safetensors.ts";
import { type StoredDtype, StoredTensor } from "./stored.ts";
import { Rng } from "./util/rng.ts";

const available = openBlas() !== null;

/** Closed-form decode of one stored element, independent of the code under test. */
function decodeRef(dtype: StoredDtype, bits: number): number {
  if (dtype === "BF16") return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** A random stored weight [rows, cols] and its exact float32 values. */
function storedOf(dtype: StoredDtype, rows: number, cols: number, rng: Rng) {
  const values = rng.normalArray(rows * cols, 0.5);
  if (dtype === "F32") return { w: StoredTensor.fromFloat32(values, [rows, cols]), dense: values };
  const enc = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
  const bits = Uint16Array.from(values, (v) => enc(v));
  const dense = Float32Array.from(bits, (b) => decodeRef(dtype, b));
  return { w: new StoredTensor(dtype, bits, [rows, cols]), dense };
}

/** Forward y = x W^T and input gradient of sum(y * r) through the stored op and through a dense W. */
function both(w: StoredTensor, dense: Float32Array, x: tf.Tensor2D, r: tf.Tensor2D) {
  const loss = (f: (x: tf.Tensor2D) => tf.Tensor2D) => (xs: tf.Tensor) =>
    tf.sum(tf.mul(f(xs as tf.Tensor2D), r));
  const wt = tf.tensor2d(dense, w.shape);
  const stored = (xs: tf.Tensor2D) => storedLinear(xs, w);
  const plain = (xs: tf.Tensor2D) => tf.matMul(xs, wt, false, true) as tf.Tensor2D;
  const out = {
    y: stored(x).dataSync() as Float32Array,
    yRef: plain(x).dataSync() as Float32Array,
    dx: tf.grad(loss(stored))(x).dataSync() as Float32Array,
    dxRef: tf.grad(loss(plain))(x).dataSync() as Float32Array,
  };
  wt.dispose();
  return out;
}

/** float64 reference of x W^T and r W, for the tolerance of the blocked forms. */
function reference(x: Float32Array, w: Float32Array, r: Float32Array, m: number, rows: number, cols: number) {
  const y = new Float64Array(m * rows);
  const dx = new Float64Array(m * cols);
  for (let i = 0; i < m; i++) {
    for (let o = 0; o < rows; o++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[i * cols + c] * w[o * cols + c];
      y[i * rows + o] = s;
      const ro = r[i * rows + o];
      for (let c = 0; c < cols; c++) dx[i * cols + c] += ro * w[o * cols + c];
    }
  }
  return { y, dx };
}

Deno.test({
  name:
    "off-heap linear: forward and input gradient equal the dense path bit for bit (F32, F16, BF16, odd shapes)",
  ignore: !available,
  fn: async () => {
    for (const backend of ["native", "cpu"] as const) {
      await initBackend(backend);
      for (const dtype of ["F32", "F16", "BF16"] as const) {
        for (const [m, rows, cols] of [[5, 7, 3], [1, 33, 17], [13, 129, 65]]) {
          const rng = new Rng(rows * 31 + cols);
          const { w, dense } = storedOf(dtype, rows, cols, rng);
          const x = tf.tensor2d(rng.normalArray(m * cols), [m, cols]);
          const r = tf.tensor2d(rng.normalArray(m * rows), [m, rows]);
          const got = both(w, dense, x, r);
          // One sgemm with the same operands either way: identical bits.
          assert.deepEqual(got.y, got.yRef, `${backend} ${dtype} [${m}, ${rows}, ${cols}] forward`);
          assert.deepEqual(got.dx, got.dxRef, `${backend} ${dtype} [${m}, ${rows}, ${cols}] input gradient`);
          tf.dispose([x, r]);
        }
      }
    }
  },
});

Deno.test({
  name: "off-heap linear: a weight larger than the tile runs in blocks and matches a float64 reference",
  ignore: !available,
  fn: async () => {
    await initBackend("native");
    const cols = 1031;
    const rows = Math.floor(STORED_TILE_FLOATS / cols) + 37; // two blocks of rows
    const m = 3;
    const rng = new Rng(5);
    const { w, dense } = storedOf("BF16", rows, cols, rng);
    const xv = rng.normalArray(m * cols);
    const rv = rng.normalArray(m * rows);
    const x = tf.tensor2d(xv, [m, cols]);
    const r = tf.tensor2d(rv, [m, rows]);
    const got = both(w, dense, x, r);
    const ref = reference(xv, dense, rv, m, rows, cols);
    // Inputs ~N(0, 1) and weights ~N(0, 0.25): a float32 sum of `rows` products of that size errs by
    // far less than 1e-4 relative to its scale sqrt(rows) * 0.5 (about 32 here).
    const scale = Math.sqrt(rows) * 0.5;
    for (let i = 0; i < got.dx.length; i++) {
      assert.ok(Math.abs(got.dx[i] - ref.dx[i]) < 1e-4 * scale, `dx[${i}] ${got.dx[i]} vs ${ref.dx[i]}`);
    }
    for (let i = 0; i < got.y.length; i += 97) {
      assert.ok(Math.abs(got.y[i] - ref.y[i]) < 1e-4 * Math.sqrt(cols), `y[${i}]`);
    }
    tf.dispose([x, r]);
  },
});

Deno.test({
  name: "off-heap linear: module with bias, dense weight, stored gather, and nothing of W on the heap",
  ignore: !available,
  fn: async () => {
    for (const backend of ["native", "cpu"] as const) {
      await initBackend(backend);
      const rng = new Rng(9);
      const { w, dense } = storedOf("F16", 11, 6, rng);
      const bias = tf.variable(tf.tensor1d(rng.normalArray(11)), false);
      const layer = new OffHeapLinear("layers.0.attn.q", w, bias);
      assert.equal(layer.inFeatures, 6);
      assert.equal(layer.outFeatures, 11);
      assert.equal(layer.storedBytes(), 11 * 6 * 2);
      const x = tf.tensor2d(rng.normalArray(4 * 6), [4, 6]);
      const y = layer.forward(x);
      if (backend === "native") {
        // Heap bytes of a product with a 512 x 256 weight: its input and output only (the weight's
        // 512 KiB as float32 would show).
        const big = storedOf("BF16", 512, 256, rng).w;
        const xb = tf.tensor2d(rng.normalArray(2 * 256), [2, 256]);
        const before = tf.memory().numBytes;
        const yb = storedLinear(xb, big);
        assert.equal(tf.memory().numBytes - before, 4 * 2 * 512);
        tf.dispose([xb, yb]);
      }
      const wt = layer.denseWeight();
      assert.deepEqual(wt.dataSync(), dense);
      const yRef = tf.add(tf.matMul(x, wt, false, true), bias);
      assert.deepEqual(y.dataSync(), yRef.dataSync());
      const ids = tf.tensor1d([3, 0, 10, 3], "int32");
      const rowsOf = storedGather(w, ids).dataSync();
      const expect = new Float32Array(4 * 6);
      [3, 0, 10, 3].forEach((id, i) => expect.set(dense.subarray(id * 6, id * 6 + 6), i * 6));
      assert.deepEqual(rowsOf, expect);
      assert.throws(() => storedGather(w, tf.tensor1d([11], "int32")), /index value 11 is not in \[0, 10\]/);
      tf.dispose([x, y, wt, yRef, ids, bias]);
    }
  },
});

Deno.test({
  name:
    "off-heap linear: every float16 and bfloat16 bit pattern decodes exactly on native (subnormals, inf, NaN)",
  ignore: !available,
  fn: async () => {
    await initBackend("native");
    for (const dtype of ["F16", "BF16"] as const) {
      const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const table = new StoredTensor(dtype, bits, [256, 256]);
      const ids = tf.tensor1d(Array.from({ length: 256 }, (_, i) => i), "int32");
      const got = storedGather(table, ids).dataSync() as Float32Array;
      for (let i = 0; i < 65536; i++) {
        const want = decodeRef(dtype, i);
        assert.ok(Object.is(got[i], want) || (Number.isNaN(got[i]) && Number.isNaN(want)), `${dtype} ${i}`);
      }
      ids.dispose();
    }
  },
});
