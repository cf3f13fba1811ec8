import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/rng.ts";
import { QuantizedLinear } from "./linear.ts";
import { validateQuantConfig } from "./config.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`QuantizedLinear (${backend}): forward and input gradient use the dequantized weight`, async () => {
    await initBackend(backend);
    const rng = new Rng(4);
    const shape: [number, number] = [24, 64];
    const w = rng.normalArray(shape[0] * shape[1]);
    const config = validateQuantConfig({ scheme: "nf4", doubleQuant: true });
    const deq = dequantizeArray(quantizeCodes(w, shape, config));
    const layer = QuantizedLinear.fromDense("l", tf.tensor2d(w, shape), config);
    const x = tf.tensor2d(rng.normalArray(3 * 64), [3, 64]);
    const wd = tf.tensor2d(deq, shape);
    const expected = tf.matMul(x, wd, false, true).dataSync();
    const got = layer.forward(x).dataSync();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-4);
    // d/dx sum(y * c) = c W_deq, through the custom gradient.
    const c = tf.tensor2d(rng.normalArray(3 * 24), [3, 24]);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.forward(xx as tf.Tensor2D), c)))(x).dataSync();
    const ref = tf.matMul(c, wd).dataSync();
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - ref[i]) < 1e-4);
    // No float copy of the weight stays resident: only the packed tensors remain.
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      layer.forward(x);
    });
    assert.equal(tf.memory().numTensors, before);
    layer.dispose();
  });
}
