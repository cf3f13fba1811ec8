import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, initBackend } from "../models/backend.ts";
import { openBlas } from "../models/native.ts";
import { AdamW } from "../methods/optim.ts";
import { learningRate } from "./optim.ts";

/** AdamW by its published update rule, in float64, for one parameter vector. */
function referenceAdamW(
  w0: number[],
  gradsPerStep: number[][],
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; clip: number },
): number[] {
  const w = [...w0];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  gradsPerStep.forEach((g0, step) => {
    const norm = Math.sqrt(g0.reduce((s, x) => s + x * x, 0));
    const scale = o.clip > 0 ? Math.min(1, o.clip / (norm + 1e-6)) : 1;
    const t = step + 1;
    for (let i = 0; i < w.length; i++) {
      const g = g0[i] * scale;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g;
      v[i] = o.b2 * v[i] + (1 - o.b2) * g * g;
      const mHat = m[i] / (1 - o.b1 ** t);
      const vHat = v[i] / (1 - o.b2 ** t);
      w[i] -= o.lr * (mHat / (Math.sqrt(vHat) + o.eps) + o.wd * w[i]);
    }
  });
  return w;
}

const backends: BackendName[] = ["cpu", "wasm"];
if (openBlas()) backends.push("native"); // native runs the fused C kernel when built

for (const backend of backends) {
  Deno.test(`AdamW with clipping and weight decay follows the published update rule (${backend})`, async () => {
    await initBackend(backend);
    const w0 = [0.5, -1.25, 2, 0.1];
    const grads = [[0.3, -4, 1, 0], [2, 0.5, -0.25, 1], [-1, 1, 1, -1]];
    const o = { lr: 0.1, b1: 0.9, b2: 0.99, eps: 1e-8, wd: 0.01, clip: 1 };
    const w = tf.variable(tf.tensor1d(w0));
    const opt = new AdamW([w], { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd, clipNorm: o.clip });
    const norms: number[] = [];
    for (const g of grads) {
      const gt = tf.tensor1d(g);
      const norm = opt.apply([gt], o.lr);
      norms.push((await norm.data())[0]);
      tf.dispose([gt, norm]);
    }
    const expected = referenceAdamW(w0, grads, o);
    const got = await w.data();
    expected.forEach((e, i) => assert.ok(Math.abs(got[i] - e) < 1e-5, `w[${i}] ${got[i]} vs ${e}`));
    grads.forEach((g, s) => assert.ok(Math.abs(norms[s] - Math.hypot(...g)) < 1e-5));
    assert.equal(opt.step, 3);
    opt.dispose();
    w.dispose();
  });
}

Deno.test("learningRate: linear warmup then cosine decay to minRatio", () => {
  const o = { lr: 1, totalSteps: 10, warmupSteps: 2, minRatio: 0.1 };
  assert.equal(learningRate(0, o), 0.5);
  assert.equal(learningRate(1, o), 1);
  assert.equal(learningRate(2, o), 1);
  assert.ok(Math.abs(learningRate(6, o) - (0.1 + 0.9 * 0.5)) < 1e-12); // halfway: cos(pi/2) = 0
  assert.ok(Math.abs(learningRate(10, o) - 0.1) < 1e-12);
});
