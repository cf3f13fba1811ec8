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
import { causalSoftmax, rmsNorm, rope, softmaxCrossEntropy, swiglu } from "./ops.ts";
import { Rng } from "./util/rng.ts";

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
    // Loading the library must leave the process's float handling alone (a -ffast-math link
    // would turn on flush-to-zero): subnormals survive float32 stores and double arithmetic.
    const subnormal = (exponent: number) => new Float32Array([2 ** exponent])[0];
    assert.equal(subnormal(-140), 2 ** -140);
    assert.ok(Number.MIN_VALUE * Number(Deno.args.length + 1) > 0);
    await initBackend("native");
    assert.ok(hasKernel(SOFTMAX_XENT) && hasKernel(ADAMW));
    await initBackend("wasm");
    assert.ok(!hasKernel(SOFTMAX_XENT));
  },
});

/** Value and input gradients of sum(w * op(inputs)) for fixed random w, on one backend. */
async function valueAndGrads(
  backend: BackendName,
  op: (...xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  seed: number,
): Promise<number[][]> {
  await initBackend(backend);
  const rng = new Rng(seed);
  const inputs = shapes.map((s) => tf.tensor(rng.normalArray(s.reduce((a, b) => a * b, 1)), s));
  const out = op(...inputs);
  const w = tf.tensor(rng.normalArray(out.size), out.shape);
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), w)))(inputs);
  const result = [
    Array.from(await out.data()),
    ...await Promise.all(grads.map(async (g) => Array.from(await g.data()))),
  ];
  tf.dispose([...inputs, out, w, ...grads]);
  return result;
}

const [t, heads, hd] = [5, 3, 8];
/** cos/sin tables [t, 1, hd], equal on both members of a pair as rope() requires. */
const ropeWith = (style: "interleaved" | "half") => (x: tf.Tensor) => {
  const cos = new Float32Array(t * hd);
  const sin = new Float32Array(t * hd);
  for (let p = 0; p < t; p++) {
    for (let j = 0; j < hd; j++) {
      const pair = style === "interleaved" ? Math.floor(j / 2) : j % (hd / 2);
      [cos[p * hd + j], sin[p * hd + j]] = [Math.cos(p + pair / 3), Math.sin(p + pair / 3)];
    }
  }
  return rope(x, tf.tensor(cos, [t, 1, hd]), tf.tensor(sin, [t, 1, hd]), style);
};
/** Additive causal mask [t, prefix + t] as the model builds it. */
function causalMask(tq: number, prefix: number): tf.Tensor {
  const data = new Float32Array(tq * (prefix + tq));
  for (let i = 0; i < tq; i++) for (let j = i + 1; j < tq; j++) data[i * (prefix + tq) + prefix + j] = -1e9;
  return tf.tensor(data, [tq, prefix + tq]);
}
const FUSED: [string, (...xs: tf.Tensor[]) => tf.Tensor, number[][]][] = [
  ["causalSoftmax", (s) => causalSoftmax(s as tf.Tensor4D, 0.7, causalMask(t, 0), 0, null), [[2, 3, t, t]]],
  ["causalSoftmax (prefix 2)", (s) => causalSoftmax(s as tf.Tensor4D, 0.7, causalMask(t, 2), 2, null), [[
    2,
    3,
    t,
    t + 2,
  ]]],
  ["rmsNorm", (x, g) => rmsNorm(x, g, 1e-5), [[2, 3, 16], [16]]],
  ["swiglu", (g, u) => swiglu(g, u), [[6, 7], [6, 7]]],
  ["rope (interleaved)", ropeWith("interleaved"), [[2, t, heads, hd]]],
  ["rope (half)", ropeWith("half"), [[2, t, heads, hd]]],
];

for (const [name, op, shapes] of FUSED) {
  for (const backend of backends.filter((b) => b !== "cpu")) {
    Deno.test(`${name}: value and gradients on ${backend} equal the cpu backend's graph`, async () => {
      const ref = await valueAndGrads("cpu", op, shapes, 9);
      const got = await valueAndGrads(backend, op, shapes, 9);
      ref.forEach((xs, i) =>
        xs.forEach((v, j) =>
          assert.ok(Math.abs(got[i][j] - v) < 1e-4 * Math.max(1, Math.abs(v)), `${i}/${j}`)
        )
      );
    });
  }
}

Deno.test("rope rotates each pair by the position's angle (closed form, cpu)", async () => {
  await initBackend("cpu");
  // One head of dim 4 at position 1: pairs (0,1),(2,3) interleaved and (0,2),(1,3) half.
  const cos = tf.tensor([1, 1, 1, 1, 0, 0, 0.6, 0.6], [2, 1, 4]);
  const sin = tf.tensor([0, 0, 0, 0, 1, 1, 0.8, 0.8], [2, 1, 4]);
  const x = tf.tensor([0, 0, 0, 0, 1, 2, 3, 4], [1, 2, 1, 4]);
  const inter = Array.from(await rope(x, cos, sin, "interleaved").data()).slice(4);
  // (1,2) by 90 degrees -> (-2, 1); (3,4) with cos .6 sin .8 -> (3*.6-4*.8, 4*.6+3*.8)
  [-2, 1, -1.4, 4.8].forEach((v, i) => assert.ok(Math.abs(inter[i] - v) < 1e-6));
  const cosH = tf.tensor([1, 1, 1, 1, 0, 0.6, 0, 0.6], [2, 1, 4]);
  const sinH = tf.tensor([0, 0, 0, 0, 1, 0.8, 1, 0.8], [2, 1, 4]);
  const half = Array.from(await rope(x, cosH, sinH, "half").data()).slice(4);
  // pairs (x0,x2) = (1,3) by 90 degrees -> (-3, 1); (x1,x3) = (2,4) -> (2*.6-4*.8, 4*.6+2*.8)
  [-3, -2, 1, 4].forEach((v, i) => assert.ok(Math.abs(half[i] - v) < 1e-6));
});

Deno.test({
  name: "fused ops reject shapes their kernels cannot index, in words (native)",
  ignore: !openBlas() || (!Deno.env.get("CI") && !openNativeKernels()),
  fn: async () => {
    await initBackend("native");
    const x = tf.zeros([2, 8]);
    assert.throws(() => rmsNorm(x, tf.ones([4]), 1e-5), /^Error: rmsNorm: needs .* got \[2,8\] and \[4\]/);
    assert.throws(
      () => swiglu(x, tf.zeros([2, 4])),
      /^Error: swiglu: needs float32 gate and up of one shape/,
    );
    assert.throws(
      () => softmaxCrossEntropy(x as tf.Tensor2D, tf.tensor1d([1, 2, 3], "int32")),
      /^Error: softmaxCrossEntropy: needs .* targets \[rows\]/,
    );
    assert.throws(
      () => causalSoftmax(tf.zeros([1, 1, 4, 5]) as tf.Tensor4D, 1, tf.zeros([4, 4]), 0, null),
      /^Error: causalSoftmax: needs .* prefix 0, got \[1,1,4,5\]/,
    );
    assert.throws(
      () => rope(tf.zeros([1, 3, 2, 4]), tf.zeros([2, 1, 4]), tf.zeros([2, 1, 4]), "half"),
      /^Error: rope: needs/,
    );
  },
});
