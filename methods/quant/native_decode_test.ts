import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { openBlas } from "../../models/native.ts";
import { openNativeKernels } from "../../models/native_kernels.ts";
import { Rng } from "../../models/util/rng.ts";
import { type ResolvedQuantConfig, validateQuantConfig } from "./config.ts";
import { QuantizedLinear } from "./linear.ts";
import { nativeDecodeActive, PackedRowDecoder } from "./native_decode.ts";
import { fromCodes } from "./quantize.ts";
import { quantizeCodes } from "./reference.ts";
import { schemeModule, SCHEMES } from "./schemes.ts";

const kernels = openNativeKernels();
const nativeReady = openBlas() !== null && kernels !== null;

/**
 * Every configuration with a C decoder: the 4-bit block schemes with and without double quant, int8,
 * 16-bit, HQQ at 4, 3 and 2 bits and GPTQ at 4 and 3 bits with and without act-order (group sizes
 * that do and do not divide the odd column counts below).
 */
const CONFIGS: { scheme: string; blockSize?: number; doubleQuant?: boolean; actOrder?: boolean }[] = [
  ...["nf4", "fp4", "int4"].flatMap((scheme) =>
    [64, 32].flatMap((blockSize) => [false, true].map((doubleQuant) => ({ scheme, blockSize, doubleQuant })))
  ),
  { scheme: "int8" },
  { scheme: "fp16" },
  { scheme: "bf16" },
  ...["hqq4", "hqq3", "hqq2"].flatMap((scheme) => [64, 32].map((blockSize) => ({ scheme, blockSize }))),
  ...["gptq4", "gptq3"].flatMap((scheme) =>
    [128, 32].flatMap((blockSize) => [false, true].map((actOrder) => ({ scheme, blockSize, actOrder })))
  ),
];
const label = (c: Record<string, unknown>) =>
  `${c.scheme}${c.blockSize ? `/${c.blockSize}` : ""}${c.doubleQuant ? "+dq" : ""}${
    c.actOrder ? "+act" : ""
  }`;

/**
 * GPTQ calibration rows X [n, cols]: normal values with unequal column energies in a scrambled order
 * (column j scaled by 0.2 + 3 · ((37 j) mod cols) / cols), so act-order permutes the columns and g_idx
 * is not monotone.
 */
function calibrationFor(cols: number, seed: number) {
  const n = 2 * cols + 8;
  const x = new Rng(seed).normalArray(n * cols);
  for (let i = 0; i < x.length; i++) x[i] *= 0.2 + 3 * (((i % cols) * 37) % cols) / cols;
  return { inputs: x, rows: n };
}

/** Codes of a test weight under `config`, with calibration rows when the scheme needs them. */
function codesFor(w: Float32Array, shape: [number, number], config: ResolvedQuantConfig, seed: number) {
  const calibration = schemeModule(config.scheme).needsCalibration ? calibrationFor(shape[1], seed) : null;
  return quantizeCodes(w, shape, config, calibration);
}

/**
 * A weight with what the decoders must get right: normal values, a few large outliers, an all-zero
 * stretch (an absmax-0 block), exact zeros and negative zeros.
 */
function testWeight(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = rng.normalArray(rows * cols, 0.05);
  for (let i = 0; i < w.length; i += 97) w[i] *= 40;
  w.fill(0, Math.min(w.length, 64), Math.min(w.length, 192));
  if (w.length > 5) w[5] = -0;
  return w;
}

/** Float32 values as their bit patterns, so that -0 and 0 differ. */
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

Deno.test("every quant scheme states its native decoder (a descriptor or null, never absent)", () => {
  for (const s of SCHEMES) {
    assert.ok("nativeDecode" in s && s.nativeDecode !== undefined, `${s.name} does not state nativeDecode`);
  }
  const covered = SCHEMES.filter((s) => s.nativeDecode !== null).map((s) => s.name).sort();
  assert.deepEqual(covered, [
    "bf16",
    "fp16",
    "fp4",
    "gptq3",
    "gptq4",
    "hqq2",
    "hqq3",
    "hqq4",
    "int4",
    "int8",
    "nf4",
  ]);
  // And every covered scheme is in the bit-identity checks below.
  assert.deepEqual([...new Set(CONFIGS.map((c) => c.scheme))].sort(), covered);
});

Deno.test({
  name:
    "C decode of the packed buffers equals the scheme's dequantizeRows bit for bit (every covered scheme, odd shapes, row ranges)",
  ignore: kernels === null,
  fn: async () => {
    await initBackend("cpu");
    // [40, 501]: 20040 elements = 313 full blocks of 64 and a short one, two double-quant groups.
    for (const [rows, cols] of [[7, 13], [5, 100], [40, 501], [1, 3]] as const) {
      for (const c of CONFIGS) {
        const config = validateQuantConfig(c);
        const mod = schemeModule(config.scheme);
        const q = codesFor(testWeight(rows, cols, rows * 1000 + cols), [rows, cols], config, cols);
        if (config.actOrder && cols > config.blockSize) {
          // The act-order case must exercise a scrambled column -> group map.
          assert.ok(
            q.groupIndex.some((g, j) => j > 0 && g < q.groupIndex[j - 1]),
            `${label(c)} g_idx is monotone`,
          );
        }
        const packed = fromCodes(q);
        const arrays = Object.fromEntries(
          Object.entries(packed.tensors).map(([k, t]) => [k, t.dataSync() as Int32Array | Float32Array]),
        );
        const dec = new PackedRowDecoder(mod.nativeDecode!, [rows, cols], config.blockSize, arrays, kernels!);
        const ranges = [[0, rows], [rows - 1, rows], [Math.floor(rows / 3), Math.floor(rows / 3) + 2]]
          .filter(([_a, b]) => b <= rows);
        for (const [r0, r1] of ranges) {
          const got = new Float32Array((r1 - r0) * cols);
          dec.decodeRowsInto(r0, r1 - r0, got);
          assert.deepEqual(
            bits(got),
            bits(mod.dequantizeRows(q, r0, r1)),
            `${label(c)} [${rows}, ${cols}] rows ${r0}..${r1}`,
          );
        }
        // The tfjs decoder of the same buffers agrees too (it is held to dequantizeRows elsewhere).
        const all = new Float32Array(rows * cols);
        dec.decodeRowsInto(0, rows, all);
        const t = packed.dequantize();
        assert.deepEqual(bits(all), bits(t.dataSync() as Float32Array), `${label(c)} vs the tfjs decode`);
        t.dispose();
        packed.dispose();
      }
    }
  },
});

Deno.test({
  name:
    "C affine decode of hand-packed codes: w = (c - z) · s per (row, group), 3-bit rows starting mid-word, g_idx, bad g_idx refused",
  ignore: kernels === null,
  fn: () => {
    // [3, 7], 3-bit codes c = (5 i + j) mod 8 (10 per int32 word: row 1 starts at field 7, row 2 spans
    // words 1 and 2), groups of 4 columns (two per row, the second short), s = 0.5 + r, z = g + 0.25 r.
    const [rows, cols, blockSize] = [3, 7, 4];
    const code = (i: number, j: number) => (5 * i + j) % 8;
    const words = new Int32Array(3);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const f = i * cols + j;
        words[Math.floor(f / 10)] |= code(i, j) << (3 * (f % 10));
      }
    }
    const scales = new Float32Array([0.5, 0.5, 1.5, 1.5, 2.5, 2.5]);
    const zeros = new Float32Array([0, 1, 0.25, 1.25, 0.5, 1.5]);
    // Every value is exact in float32: (c - z) has at most 5 significant bits, s at most 3.
    const expected = (groupOf: (j: number) => number) =>
      Float32Array.from({ length: rows * cols }, (_, f) => {
        const [i, j] = [Math.floor(f / cols), f % cols];
        const g = groupOf(j);
        return (code(i, j) - (g + 0.25 * i)) * (0.5 + i);
      });
    const plain = new PackedRowDecoder({ kind: "affine", bits: 3 }, [rows, cols], blockSize, {
      packed: words,
      scales,
      zeros,
    }, kernels!);
    const got = new Float32Array(rows * cols);
    plain.decodeRowsInto(0, rows, got);
    assert.deepEqual(Array.from(got), Array.from(expected((j) => Math.floor(j / blockSize))));
    const mid = new Float32Array(cols);
    plain.decodeRowsInto(2, 1, mid);
    assert.deepEqual(
      Array.from(mid),
      Array.from(expected((j) => Math.floor(j / blockSize)).subarray(2 * cols)),
    );
    // With g_idx (act-order) the group is read per column.
    const gidx = new Int32Array([1, 0, 0, 1, 1, 0, 1]);
    const act = new PackedRowDecoder({ kind: "affine", bits: 3 }, [rows, cols], blockSize, {
      packed: words,
      scales,
      zeros,
      groupIndex: gidx,
    }, kernels!);
    act.decodeRowsInto(0, rows, got);
    assert.deepEqual(Array.from(got), Array.from(expected((j) => gidx[j])));
    assert.throws(
      () =>
        new PackedRowDecoder({ kind: "affine", bits: 3 }, [rows, cols], blockSize, {
          packed: words,
          scales,
          zeros,
          groupIndex: new Int32Array([0, 0, 0, 0, 0, 0, 2]),
        }, kernels!),
      /groupIndex\[6\] = 2 is outside \[0, 2\)/,
    );
    assert.throws(
      () =>
        new PackedRowDecoder({ kind: "affine", bits: 3 }, [rows, cols], blockSize, {
          packed: words.subarray(0, 2),
          scales,
          zeros,
        }, kernels!),
      /buffers too short/,
    );
  },
});

/** y = x W^T and d/dx sum(y * r) through a layer. */
function forwardAndGrad(layer: QuantizedLinear, x: tf.Tensor2D, r: tf.Tensor2D) {
  const y = tf.tidy(() => layer.forward(x).dataSync() as Float32Array);
  const dx = tf.tidy(() =>
    tf.grad((xs: tf.Tensor) => tf.sum(tf.mul(layer.forward(xs as tf.Tensor2D), r)))(x)
      .dataSync() as Float32Array
  );
  return { y, dx };
}

/** Sum of |a_ik b_kj| per output element, for the summation-order bound 2 k u sum|a b|. */
function absProducts(a: Float32Array, b: Float32Array, m: number, k: number, n: number, bT: boolean) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) s += Math.abs(a[i * k + l] * (bT ? b[j * k + l] : b[l * n + j]));
      out[i * n + j] = s;
    }
  }
  return out;
}

Deno.test({
  name:
    "QuantizedLinear on native decodes in C: forward and input gradient equal the dense sgemm bit for bit and the tfjs path within summation order",
  ignore: !nativeReady,
  fn: async () => {
    const [m, rows, cols] = [5, 37, 45];
    for (const c of CONFIGS.filter((c) => c.blockSize !== 32)) {
      const config = validateQuantConfig(c);
      const rng = new Rng(11);
      const wv = testWeight(rows, cols, 3);
      const xv = rng.normalArray(m * cols);
      const rv = rng.normalArray(m * rows);

      // Reference: the tfjs path (cpu backend), and the dequantized weight it multiplies with.
      await initBackend("cpu");
      const calibration = schemeModule(config.scheme).needsCalibration ? calibrationFor(cols, 7) : null;
      const cpuLayer = QuantizedLinear.fromDense(
        "l",
        tf.tensor2d(wv, [rows, cols]),
        config,
        null,
        calibration,
      );
      assert.ok(Object.keys(cpuLayer.weight.tensors).length > 0, "cpu keeps the tfjs path");
      const x0 = tf.tensor2d(xv, [m, cols]);
      const r0 = tf.tensor2d(rv, [m, rows]);
      const ref = forwardAndGrad(cpuLayer, x0, r0);
      const wq = cpuLayer.denseWeight();
      const deq = wq.dataSync() as Float32Array;
      tf.dispose([wq, x0, r0]);
      cpuLayer.dispose();

      await initBackend("native");
      assert.ok(nativeDecodeActive(config.scheme));
      const heapBefore = tf.memory().numBytes;
      const dense = tf.tensor2d(wv, [rows, cols]);
      const layer = QuantizedLinear.fromDense("l", dense, config, null, calibration);
      dense.dispose();
      // The packed codes left the heap: no stored tensors, no heap bytes.
      assert.deepEqual(Object.keys(layer.weight.tensors), [], label(c));
      assert.equal(tf.memory().numBytes, heapBefore, `${label(c)}: heap bytes after quantizing`);
      assert.deepEqual(
        bits(layer.denseWeight().dataSync() as Float32Array),
        bits(deq),
        `${label(c)} denseWeight`,
      );
      const x = tf.tensor2d(xv, [m, cols]);
      const r = tf.tensor2d(rv, [m, rows]);
      const before = tf.memory().numTensors;
      const got = forwardAndGrad(layer, x, r);
      assert.equal(tf.memory().numTensors, before, `${label(c)}: nothing stays resident`);
      // The dense path on the same backend makes the same sgemm calls with the same operands.
      const wd = tf.tensor2d(deq, [rows, cols]);
      const yDense = tf.matMul(x, wd, false, true).dataSync() as Float32Array;
      const dxDense = tf.matMul(r, wd).dataSync() as Float32Array;
      assert.deepEqual(bits(got.y), bits(yDense), `${label(c)} forward vs dense sgemm`);
      assert.deepEqual(bits(got.dx), bits(dxDense), `${label(c)} input gradient vs dense sgemm`);
      // Against the tfjs path on cpu: same W, another summation order (|error| <= 2 k u sum |a b|).
      const u = 2 ** -24;
      const yBound = absProducts(xv, deq, m, cols, rows, true);
      const dxBound = absProducts(rv, deq, m, rows, cols, false);
      for (let i = 0; i < got.y.length; i++) {
        assert.ok(Math.abs(got.y[i] - ref.y[i]) <= 2 * cols * u * yBound[i], `${label(c)} y[${i}]`);
      }
      for (let i = 0; i < got.dx.length; i++) {
        assert.ok(Math.abs(got.dx[i] - ref.dx[i]) <= 2 * rows * u * dxBound[i], `${label(c)} dx[${i}]`);
      }
      tf.dispose([x, r, wd]);
      layer.dispose();
      assert.throws(() => layer.denseWeight(), /disposed/);
    }
  },
});

Deno.test({
  name: "a scheme without a C decoder keeps the tfjs path on native (llm-int8): packed tensors on the heap",
  ignore: !nativeReady,
  fn: async () => {
    await initBackend("native");
    const [rows, cols] = [12, 64];
    for (const scheme of ["llm-int8"]) {
      const config = validateQuantConfig({ scheme });
      assert.equal(nativeDecodeActive(scheme), false);
      const dense = tf.tensor2d(testWeight(rows, cols, 5), [rows, cols]);
      const layer = QuantizedLinear.fromDense("l", dense, config);
      dense.dispose();
      assert.ok(Object.keys(layer.weight.tensors).length > 0, scheme);
      const x = tf.tensor2d(new Rng(1).normalArray(3 * cols), [3, cols]);
      const w = layer.denseWeight();
      const y = layer.forward(x).dataSync();
      const yRef = tf.matMul(x, w, false, true).dataSync();
      // llm-int8 computes its own int8/fp16 product (close to x W^T with the dequantized weight).
      for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - yRef[i]) < 0.05, `${scheme} y[${i}]`);
      tf.dispose([x, w]);
      layer.dispose();
    }
  },
});
