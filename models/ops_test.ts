import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, initBackend } from "./backend.ts";
import { openBlas } from "./native.ts";
import {
  ADAMW,
  hasKernel,
  nativeKernelsUnavailableReason,
  openNativeKernels,
  SOFTMAX_XENT,
} from "./native_kernels.ts";
import { softmaxCrossEntropy } from "./ops.ts";
import { Rng } from "./rng.ts";

/** Loss and gradient of sum_r w[r] * CE(x[r], t[r]) in float64, straight from the definition. */
function referenceXent(x: Float32Array, targets: number[], w: number[], cols: number) {
  const rows = targets.length;
  const loss: number[] = [];
  const grad = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
    const z = row.reduce((s, v) => s + Math.exp(v), 0);
    const t = targets[r];
    loss.push(Math.log(z) - (t >= 0 && t < cols ? row[t] : 0));
    for (let j = 0; j < cols; j++) grad[r * cols + j] = w[r] * (Math.exp(row[j]) / z - (j === t ? 1 : 0));
  }
  return { loss, grad };
}

const backends: BackendName[] = ["cpu", "wasm"];
if (openBlas()) backends.push("native");

for (const backend of backends) {
  Deno.test(`softmaxCrossEntropy: loss and gradient equal the closed form (${backend})`, async () => {
    await initBackend(backend);
    const [rows, cols] = [4, 37];
    const x = new Rng(5).normalArray(rows * cols).map((v) => 4 * v);
    const targets = [3, 0, 36, 40]; // the last is out of range: no picked term
    const w = [1, -2, 0.5, 3];
    const ref = referenceXent(x, targets, w, cols);
    const logits = tf.tensor2d(x, [rows, cols]);
    const t = tf.tensor1d(targets, "int32");
    const weights = tf.tensor1d(w);
    const loss = softmaxCrossEntropy(logits, t);
    const grad = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(softmaxCrossEntropy(l as tf.Tensor2D, t), weights)))(
      logits,
    );
    const [lv, gv] = [await loss.data(), await grad.data()];
    ref.loss.forEach((v, i) => assert.ok(Math.abs(lv[i] - v) < 1e-5 * Math.max(1, Math.abs(v)), `loss ${i}`));
    ref.grad.forEach((v, i) => assert.ok(Math.abs(gv[i] - v) < 1e-5, `grad ${i}: ${gv[i]} vs ${v}`));
    tf.dispose([logits, t, weights, loss, grad]);
  });
}

Deno.test({
  name: "native: the fused kernels are built and used (CI builds them with `deno task build-native`)",
  ignore: !openBlas() || (!Deno.env.get("CI") && !openNativeKernels()),
  fn: async () => {
    assert.ok(openNativeKernels(), nativeKernelsUnavailableReason());
    await initBackend("native");
    assert.ok(hasKernel(SOFTMAX_XENT) && hasKernel(ADAMW));
    await initBackend("wasm");
    assert.ok(!hasKernel(SOFTMAX_XENT));
  },
});
