import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { validateQuantConfig } from "./config.ts";
import { fromFp16Bits, toFp16Bits } from "./half.ts";
import { QuantizedLinear } from "./linear.ts";
import { quantize } from "./quantize.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";

const f16 = (v: number) => fromFp16Bits(toFp16Bits(v));
const [OUT, IN, N] = [16, 64, 8];

/** A weight, its int8 dequantization Ŵ (the weight side, pinned by the int8 tests), and x with planted outliers. */
function fixture() {
  const rng = new Rng(21);
  const w = rng.normalArray(OUT * IN, 0.5);
  const wd = dequantizeArray(quantizeCodes(w, [OUT, IN], { scheme: "int8" }));
  const x = rng.normalArray(N * IN, 1).map((v) => Math.max(-3, Math.min(3, v)));
  x[1 * IN + 5] = 60.25; // feature 5: a large outlier in one token
  x[4 * IN + 40] = -6; // feature 40: exactly at the threshold (inclusive)
  x[6 * IN + 40] = 17.5;
  x[2 * IN + 12] = 5.999; // feature 12 stays below
  return { w, wd, x };
}

/** y = x Ŵ^T in float64 over the given columns, with fp16 operands when `half`. */
function partial(x: Float32Array, wd: Float32Array, cols: number[], half: boolean): Float64Array {
  const y = new Float64Array(N * OUT);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      let s = 0;
      for (const j of cols) {
        s += half ? f16(x[n * IN + j]) * f16(wd[o * IN + j]) : x[n * IN + j] * wd[o * IN + j];
      }
      y[n * OUT + o] = s;
    }
  }
  return y;
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`llm-int8 (${backend}): outlier features of x take the fp16 path, the rest vector-wise int8 within its bound`, async () => {
    await initBackend(backend);
    const { w, wd, x } = fixture();
    const outliers = [5, 40];
    const inliers = Array.from({ length: IN }, (_, j) => j).filter((j) => !outliers.includes(j));
    const qw = quantize(w, [OUT, IN], { scheme: "llm-int8" });
    const xt = tf.tensor2d(x, [N, IN]);

    // 1. Only the outlier columns nonzero: the int8 part is exactly 0, so y is the fp16 product.
    const xOnly = x.map((v, i) => (outliers.includes(i % IN) ? v : 0));
    const y1 = qw.matmul(tf.tensor2d(xOnly, [N, IN]))!.dataSync();
    const ref1 = partial(xOnly, wd, outliers, true);
    for (let i = 0; i < y1.length; i++) {
      assert.ok(
        Math.abs(y1[i] - ref1[i]) <= 1e-6 * (Math.abs(ref1[i]) + 1),
        `fp16 path ${i}: ${y1[i]} vs ${ref1[i]}`,
      );
    }
    assert.deepEqual(qw.forwardStats!.lastOutliers, outliers);

    // 2. Everything: |y - (fp16 outlier part + exact inlier part)| <= (a_n / 254) · sum_j∈I |Ŵ[o, j]|,
    // a_n = max_j∈I |x[n, j]|: each inlier x is off by at most half an int8 step of its row, and the
    // weight codes are the stored ones (Ŵ), so that is the only int8 error; plus float32 rounding.
    const y = qw.matmul(xt)!.dataSync();
    const ref = partial(x, wd, outliers, true);
    const inl = partial(x, wd, inliers, false);
    let worst = 0;
    for (let n = 0; n < N; n++) {
      const a = Math.max(...inliers.map((j) => Math.abs(x[n * IN + j])));
      for (let o = 0; o < OUT; o++) {
        let wsum = 0;
        for (const j of inliers) wsum += Math.abs(wd[o * IN + j]);
        const bound = (a / 254) * wsum * (1 + 1e-5) + 1e-5 * (Math.abs(ref[n * OUT + o]) + 1);
        const err = Math.abs(y[n * OUT + o] - ref[n * OUT + o] - inl[n * OUT + o]);
        assert.ok(err <= bound, `row ${n} out ${o}: ${err} > ${bound}`);
        worst = Math.max(worst, err / bound);
      }
    }
    assert.ok(worst > 0.02, `int8 error never shows (${worst}): is x quantized at all?`);
    assert.equal(qw.forwardStats!.outlierColumns, 4);
    assert.equal(qw.forwardStats!.columns, 2 * IN);

    // 3. Without the decomposition (threshold above every |x|) the 60.25 sets row 1's int8 step, and
    // the error against x Ŵ^T grows far beyond LLM.int8()'s; plain weight-only int8 differs visibly.
    const exact = partial(x, wd, Array.from({ length: IN }, (_, j) => j), false);
    const noDecomp = quantize(w, [OUT, IN], { scheme: "llm-int8", outlierThreshold: 1e9 });
    const yPlain = noDecomp.matmul(xt)!.dataSync();
    const maxErr = (v: ArrayLike<number>, rows: number[]) =>
      Math.max(
        ...rows.flatMap((n) =>
          Array.from({ length: OUT }, (_, o) => Math.abs(v[n * OUT + o] - exact[n * OUT + o]))
        ),
      );
    assert.ok(
      maxErr(yPlain, [1]) > 10 * maxErr(y, [1]),
      `row 1: no decomposition ${maxErr(yPlain, [1])} vs LLM.int8() ${maxErr(y, [1])}`,
    );
    const int8 = quantize(w, [OUT, IN], { scheme: "int8" });
    assert.equal(int8.matmul(xt), null, "int8 is weight-only: the layer multiplies the dequantized weight");
    const yWeightOnly = tf.matMul(xt, int8.dequantize(), false, true).dataSync();
    const diff = Math.max(...Array.from(y, (v, i) => Math.abs(v - yWeightOnly[i])));
    assert.ok(
      diff > 1e-3,
      `llm-int8 should differ from weight-only int8 (activations are int8), max diff ${diff}`,
    );
    for (const q of [qw, noDecomp, int8]) q.dispose();
    xt.dispose();
  });
}

Deno.test("llm-int8 layer: forward through the decomposition, gradient through Ŵ, outlier share per layer", async () => {
  await initBackend("cpu");
  const { w, wd, x } = fixture();
  const layer = QuantizedLinear.fromDense(
    "l",
    tf.tensor2d(w, [OUT, IN]),
    validateQuantConfig({ scheme: "llm-int8" }),
  );
  const xt = tf.tensor2d(x, [N, IN]);
  const direct = quantize(w, [OUT, IN], { scheme: "llm-int8" });
  assert.deepEqual(Array.from(layer.forward(xt).dataSync()), Array.from(direct.matmul(xt)!.dataSync()));
  const c = tf.tensor2d(new Rng(3).normalArray(N * OUT), [N, OUT]);
  const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.forward(xx as tf.Tensor2D), c)))(xt).dataSync();
  const ref = tf.matMul(c, tf.tensor2d(wd, [OUT, IN])).dataSync();
  for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - ref[i]) < 1e-4, `grad ${i}`);
  // Two forwards of x (2 outlier features of 64 each) then one of x / 100 (none).
  layer.forward(tf.div(xt, 100) as tf.Tensor2D);
  const stats = layer.quantStats;
  assert.equal(stats.forwardCalls, 3);
  assert.ok(Math.abs(stats.outlierShare! - 4 / (3 * IN)) < 1e-12, String(stats.outlierShare));
  assert.equal(
    QuantizedLinear.fromDense("m", tf.tensor2d(w, [OUT, IN]), validateQuantConfig({ scheme: "nf4" }))
      .quantStats.outlierShare,
    null,
  );
  layer.dispose();
  direct.dispose();
});
