import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import "../backend.ts";

const GRADIENTS = fileURLToPath(
  new URL("../../node_modules/@tensorflow/tfjs-core/dist/gradients", import.meta.url),
);

Deno.test("vendored tfjs gradients: every gradient tfjs-core ships is registered", () => {
  const kernels = readdirSync(GRADIENTS)
    .filter((f) => f.endsWith("_grad.js"))
    .flatMap((f) => [...readFileSync(join(GRADIENTS, f), "utf8").matchAll(/kernelName: (\w+),/g)])
    .map((m) => (tf as unknown as Record<string, string>)[m[1]]);
  assert.ok(kernels.length > 100, `only ${kernels.length} gradients found`);
  const missing = kernels.filter((k) => tf.getGradient(k) === undefined);
  assert.deepEqual(missing, []);
});

Deno.test("vendored tfjs gradients: closed forms on the cpu backend (broadcast add, matMul, mean)", async () => {
  await tf.setBackend("cpu");
  // d/dA sum(A B) = 1 B^T; d/dB = A^T 1.
  const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const b = tf.tensor2d([[1, -1], [2, 0], [0, 3]]);
  const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D))
  )([a, b]);
  assert.deepEqual(da.arraySync(), [[0, 2, 3], [0, 2, 3]]);
  assert.deepEqual(db.arraySync(), [[5, 5], [7, 7], [9, 9]]);
  // Broadcasting add sums the gradient over the broadcast axis; mean divides by the count.
  const row = tf.tensor1d([1, 2, 3]);
  const g = tf.grad((r: tf.Tensor) => tf.mean(tf.add(a, r)))(row);
  assert.deepEqual(g.arraySync(), [1, 1, 1].map(() => Math.fround(2 / 6)));
  tf.dispose([a, b, da, db, row, g]);
});
