import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { collectLayerInputs } from "./calibration.ts";
import { validateQuantConfig } from "./config.ts";
import { QuantizedLinear } from "./linear.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";
import { cholesky } from "./schemes/gptq.ts";

/** Round half to even, written out here (not the module's). */
const rne = (v: number) => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
};

/** Round-to-nearest with gptq's quantizer (min/max including 0, integer zero) per group of gs columns. */
function rtn(w: Float32Array, rows: number, cols: number, bits: number, gs: number): Float32Array {
  const maxq = 2 ** bits - 1;
  const out = new Float32Array(w.length);
  for (let i = 0; i < rows; i++) {
    for (let g0 = 0; g0 < cols; g0 += gs) {
      const seg = Array.from(w.subarray(i * cols + g0, i * cols + Math.min(cols, g0 + gs)));
      const lo = Math.min(0, ...seg);
      const hi = Math.max(0, ...seg);
      const s = Math.fround((hi - lo) / maxq);
      const z = rne(-lo / s);
      seg.forEach((v, j) =>
        out[i * cols + g0 + j] = Math.fround((Math.min(maxq, Math.max(0, rne(v / s) + z)) - z) * s)
      );
    }
  }
  return out;
}

/** ||X W^T - X Q^T||_F in float64. */
function outputError(
  x: Float32Array,
  n: number,
  w: Float32Array,
  q: Float32Array,
  rows: number,
  cols: number,
) {
  let sum = 0;
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < rows; o++) {
      let d = 0;
      for (let j = 0; j < cols; j++) d += x[r * cols + j] * (w[o * cols + j] - q[o * cols + j]);
      sum += d * d;
    }
  }
  return Math.sqrt(sum);
}

/** Correlated calibration inputs: X = Z M with a random mixing M and uneven feature scales. */
function correlatedInputs(n: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const z = rng.normalArray(n * cols);
  const m = rng.normalArray(cols * cols, 1 / Math.sqrt(cols));
  const scale = Float64Array.from({ length: cols }, (_, j) => 0.2 + 3 * ((j * 37) % cols) / cols);
  const x = new Float32Array(n * cols);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += z[r * cols + k] * m[k * cols + j];
      x[r * cols + j] = (s + 0.3 * z[r * cols + j]) * scale[j];
    }
  }
  return x;
}

Deno.test("GPTQ's output error ||XW^T - XQ^T|| is below round-to-nearest at the same bits and group size", () => {
  const [rows, cols, n] = [32, 128, 512];
  const w = new Rng(5).normalArray(rows * cols, 0.05);
  const x = correlatedInputs(n, cols, 6);
  for (const scheme of ["gptq4", "gptq3"] as const) {
    const bits = Number(scheme.slice(4));
    for (const blockSize of [32, 128]) {
      const plain = outputError(x, n, w, rtn(w, rows, cols, bits, blockSize), rows, cols);
      for (const actOrder of [false, true]) {
        const q = dequantizeArray(
          quantizeCodes(w, [rows, cols], { scheme, blockSize, actOrder }, { inputs: x, rows: n }),
        );
        const err = outputError(x, n, w, q, rows, cols);
        assert.ok(err < 0.9 * plain, `${scheme}/${blockSize}/actOrder=${actOrder}: ${err} vs RTN ${plain}`);
      }
    }
  }
});

Deno.test("GPTQ with uncorrelated inputs of equal energy (H = c I) is exactly round-to-nearest", () => {
  // X = 3 I stacked twice: H = (2/N) X^T X is diagonal, so U is diagonal and no column is updated.
  const [rows, cols] = [8, 64];
  const x = new Float32Array(2 * cols * cols);
  for (let r = 0; r < 2 * cols; r++) x[r * cols + (r % cols)] = 3;
  const w = new Rng(9).normalArray(rows * cols, 0.1);
  for (const actOrder of [false, true]) {
    const q = dequantizeArray(
      quantizeCodes(w, [rows, cols], { scheme: "gptq4", blockSize: 16, actOrder }, {
        inputs: x,
        rows: 2 * cols,
      }),
    );
    assert.deepEqual(Array.from(q), Array.from(rtn(w, rows, cols, 4, 16)), `actOrder=${actOrder}`);
  }
});

Deno.test("act-order stores g_idx and groups columns by decreasing Hessian diagonal", () => {
  const [rows, cols, n] = [4, 32, 64];
  const rng = new Rng(12);
  const x = rng.normalArray(n * cols);
  for (let r = 0; r < n; r++) x[r * cols + 31] *= 10; // the largest diag(H): first in act-order
  for (let r = 0; r < n; r++) x[r * cols + 3] *= 5; // second
  const w = rng.normalArray(rows * cols);
  const q = quantizeCodes(w, [rows, cols], { scheme: "gptq4", blockSize: 16, actOrder: true }, {
    inputs: x,
    rows: n,
  });
  assert.equal(q.groupIndex.length, cols);
  assert.equal(q.groupIndex[31], 0);
  assert.equal(q.groupIndex[3], 0);
  assert.equal(q.groupIndex.filter((g) => g === 0).length, 16);
  const plain = quantizeCodes(w, [rows, cols], { scheme: "gptq4", blockSize: 16 }, { inputs: x, rows: n });
  assert.equal(plain.groupIndex.length, 0);
});

Deno.test("cholesky: L L^T reproduces an SPD matrix; a singular one is one clear error", () => {
  const a = Float64Array.from([4, 2, 0.4, 2, 5, 1, 0.4, 1, 3]);
  const l = cholesky(a, 3);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += l[i * 3 + k] * l[j * 3 + k];
      assert.ok(Math.abs(s - a[i * 3 + j]) < 1e-12);
    }
  }
  assert.throws(() => cholesky(Float64Array.from([1, 1, 1, 1]), 2), /not positive definite; raise damping/);
});

Deno.test("collectLayerInputs records each layer's input rows and restores the layers; GPTQ quantizes from them", async () => {
  await initBackend("cpu");
  const { tinyModel } = await import("../tiny_test_utils.ts");
  const model = tinyModel();
  const names = [...model.linears.keys()].filter((k) => k.startsWith("layers."));
  const before = names.map((k) => model.linears.get(k));
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], "int32");
  const cal = collectLayerInputs(model, names, () => {
    tf.tidy(() => {
      model.hidden(ids);
    });
  }, 10);
  assert.deepEqual(names.map((k) => model.linears.get(k)), before, "layers restored");
  for (const k of names) {
    const c = cal.get(k)!;
    assert.equal(c.rows, 10); // 12 tokens seen, capped at 10
    assert.equal(c.inputs.length, 10 * model.linears.get(k)!.inFeatures);
  }
  const name = names[0];
  const layer = model.linears.get(name)!;
  const q = QuantizedLinear.fromDense(
    name,
    layer.denseWeight(),
    validateQuantConfig({ scheme: "gptq4", blockSize: 16 }),
    null,
    cal.get(name)!,
  );
  assert.equal(q.quantStats.calibrationRows, 10);
  assert.ok(
    q.quantStats.relativeError! > 0 && q.quantStats.relativeError! < 0.2,
    String(q.quantStats.relativeError),
  );
  q.dispose();
  ids.dispose();
  model.dispose();
});

Deno.test("GPTQ on the embedded model's layers, with activations from its training text, errs less than RTN", async () => {
  await initBackend("cpu");
  const { realLayers } = await import("./real_layers_test_utils.ts");
  const layers = await realLayers(["layers.0.attn.q", "layers.1.mlp.down", "layers.3.attn.o"]);
  for (const { name, weight, shape: [rows, cols], inputs, rows: n } of layers) {
    assert.ok(n >= 256, `${name}: only ${n} input rows`);
    for (const [scheme, bits] of [["gptq4", 4], ["gptq3", 3]] as const) {
      const q = dequantizeArray(
        quantizeCodes(weight, [rows, cols], { scheme, blockSize: 64 }, { inputs, rows: n }),
      );
      const err = outputError(inputs, n, weight, q, rows, cols);
      const plain = outputError(inputs, n, weight, rtn(weight, rows, cols, bits, 64), rows, cols);
      assert.ok(err < plain, `${name} ${scheme}: ${err} vs RTN ${plain}`);
    }
  }
});
