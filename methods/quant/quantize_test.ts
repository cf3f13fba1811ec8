import assert from "node:assert/strict";
import { NF4_BNB_VALUES } from "./bnb_reference.ts";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { QUANT_SCHEMES, type QuantConfig, validateQuantConfig } from "./config.ts";
import { quantize } from "./quantize.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";

const CONFIGS: QuantConfig[] = [
  { scheme: "none" },
  { scheme: "fp16" },
  { scheme: "bf16" },
  { scheme: "int8" },
  { scheme: "llm-int8", outlierThreshold: 2.5 },
  { scheme: "int4", blockSize: 32 },
  { scheme: "nf4" },
  { scheme: "fp4", blockSize: 16 },
  { scheme: "int4", doubleQuant: true, blockSize: 16 },
  { scheme: "nf4", doubleQuant: true, blockSize: 16 },
  { scheme: "fp4", doubleQuant: true },
  { scheme: "hqq4" },
  { scheme: "hqq3", blockSize: 32 },
  { scheme: "hqq2", blockSize: 16 },
  { scheme: "gptq4", blockSize: 32 },
  { scheme: "gptq3", blockSize: 16, actOrder: true },
];

/** Calibration rows for the schemes that need them (GPTQ), seeded. */
function calibrationFor(config: QuantConfig, cols: number) {
  if (!config.scheme.startsWith("gptq")) return null;
  const rows = 2 * cols;
  return { inputs: new Rng(17).normalArray(rows * cols, 1), rows };
}

function bitsEqual(x: Float32Array, y: Float32Array, what: string): void {
  assert.equal(x.length, y.length, `${what}: length`);
  const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
  for (let i = 0; i < x.length; i++) {
    if (xb[i] !== yb[i]) assert.fail(`${what}: element ${i}: ${x[i]} vs ${y[i]}`);
  }
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`tfjs dequantize() equals dequantizeArray bit for bit on ${backend}`, async () => {
    await initBackend(backend);
    const rng = new Rng(11);
    // 37 x 91 = 3367: not a multiple of any block size, of 8 nibbles or of 4 bytes.
    const shape: [number, number] = [37, 91];
    const w = rng.normalArray(37 * 91, 1);
    // A big-exponent value and a fp16 subnormal exercise the 16-bit decoders' edge rows.
    w[5] = 3.0e4;
    w[6] = 3.0e-6;
    w[7] = -0;
    const before = tf.memory().numTensors;
    for (const config of CONFIGS) {
      const cal = calibrationFor(config, shape[1]);
      const qw = quantize(w, shape, config, cal);
      const ref = dequantizeArray(quantizeCodes(w, shape, config, cal));
      const out = qw.dequantize();
      assert.deepEqual(out.shape, shape);
      assert.equal(out.dtype, "float32");
      bitsEqual(out.dataSync() as Float32Array, ref, `${backend} ${JSON.stringify(config)}`);
      out.dispose();
      qw.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "dequantize/dispose leak no tensors");
  });
}

Deno.test("every NF4/FP4/int4 code value round-trips exactly", () => {
  const absmax = Math.fround(0.7351); // an arbitrary float32 scale
  for (const scheme of ["nf4", "fp4"] as const) {
    const table = scheme === "nf4" ? NF4_BNB_VALUES : FP4_REF;
    // One block of 16 = each code value times absmax (float32 products, as stored weights are).
    const w = Float32Array.from(table, (v) => Math.fround(v) * absmax); // float32 code · float32 absmax
    const back = dequantizeArray(quantizeCodes(w, [1, 16], { scheme, blockSize: 16 }));
    for (let i = 0; i < 16; i++) assert.ok(back[i] === w[i], `${scheme} code ${i}: ${back[i]} vs ${w[i]}`);
  }
  // int4: values k·s with s = 0.125 (absmax = 7s exactly, so the stored step is s).
  const w = Float32Array.from({ length: 16 }, (_, i) => (i === 15 ? 0 : i - 7) * 0.125);
  const back = dequantizeArray(quantizeCodes(w, [1, 16], { scheme: "int4", blockSize: 16 }));
  bitsEqual(back, w, "int4 round trip");
});

// bitsandbytes functional.py get_4bit_type("fp4"): [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...] / 12.
const FP4_REF = [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12);

Deno.test("quantization error of N(0,1) weights is within each scheme's bound", () => {
  const rng = new Rng(5);
  const [rows, cols] = [48, 128];
  const w = rng.normalArray(rows * cols, 1);
  const err = (config: QuantConfig) => {
    const d = dequantizeArray(quantizeCodes(w, [rows, cols], config));
    return Float64Array.from(w, (x, i) => Math.abs(x - d[i]));
  };
  const slack = 1 + 1e-6; // float32 rounding of the scale and of the product
  // fp16: relative 2^-11 (all |w| here are normal fp16 or exactly representable small values).
  for (const [scheme, rel] of [["fp16", 2 ** -11], ["bf16", 2 ** -8]] as const) {
    const e = err({ scheme });
    let worst = 0;
    w.forEach((x, i) => worst = Math.max(worst, e[i] / Math.max(Math.abs(x), 2 ** -14)));
    assert.ok(worst <= rel, `${scheme}: relative error ${worst} > ${rel}`);
    assert.ok(worst > rel / 4, `${scheme}: error ${worst} suspiciously small (is it rounding at all?)`);
  }
  // int8: |err| <= absmax_row / 254.
  const e8 = err({ scheme: "int8" });
  for (let i = 0; i < rows; i++) {
    const row = w.subarray(i * cols, (i + 1) * cols);
    const bound = (Math.max(...row.map(Math.abs)) / 254) * slack;
    for (let j = 0; j < cols; j++) assert.ok(e8[i * cols + j] <= bound, `int8 row ${i}`);
  }
  // 4-bit: |err| <= absmax_block · h, h = half the largest gap of the normalised code:
  // int4 1/14; NF4 (1 - 0.6961928009986877) / 2 (its widest gap is at -1); FP4 (1 - 8/12) / 2.
  const halfGap = { int4: 1 / 14, nf4: (1 - 0.6961928009986877) / 2, fp4: (1 - 8 / 12) / 2 };
  for (const scheme of ["int4", "nf4", "fp4"] as const) {
    for (const blockSize of [16, 64, 256]) {
      const e = err({ scheme, blockSize });
      let worstRatio = 0;
      for (let b = 0; b < (rows * cols) / blockSize; b++) {
        const blk = w.subarray(b * blockSize, (b + 1) * blockSize);
        const absmax = Math.max(...blk.map(Math.abs));
        for (let i = b * blockSize; i < (b + 1) * blockSize; i++) {
          worstRatio = Math.max(worstRatio, e[i] / (absmax * halfGap[scheme]));
        }
      }
      assert.ok(worstRatio <= slack, `${scheme}/${blockSize}: error reaches ${worstRatio} x bound`);
      assert.ok(worstRatio > 0.5, `${scheme}/${blockSize}: bound never approached (${worstRatio})`);
    }
  }
});

Deno.test("double quantization: scales re-quantized with error <= group absmax x dynamic-map half gap", () => {
  const rng = new Rng(9);
  const w = rng.normalArray(64 * 1024, 1); // 1024 blocks of 64 = 4 groups of 256
  const plain = quantizeCodes(w, [64, 1024], { scheme: "nf4" });
  const dq = quantizeCodes(w, [64, 1024], { scheme: "nf4", doubleQuant: true });
  assert.deepEqual(dq.codes, plain.codes, "4-bit codes use the unquantized absmax, as bitsandbytes");
  const mean = plain.scales.reduce((a, b) => a + b, 0) / plain.scales.length;
  assert.ok(Math.abs(dq.doubleQuant!.mean - mean) < 1e-6 * mean);
  // The widest gap of the dynamic map is between neighbouring midpoints of linspace(0.1, 1, 65),
  // i.e. its step 0.9 / 64, so the rounding error of a normalised scale is at most half of that.
  const h = 0.9 / 64 / 2;
  for (let b = 0; b < plain.scales.length; b++) {
    const g = Math.floor(b / 256);
    let absmax = 0;
    for (let k = g * 256; k < (g + 1) * 256; k++) absmax = Math.max(absmax, Math.abs(plain.scales[k] - mean));
    assert.ok(Math.abs(dq.scales[b] - plain.scales[b]) <= absmax * h + 1e-6, `scale ${b}`);
  }
});

Deno.test("bits per parameter from real stored bytes of a 4096x4096 weight", () => {
  const shape: [number, number] = [4096, 4096];
  const n = 4096 * 4096;
  const w = new Float32Array(n); // zeros: byte counts do not depend on values, and this is fast
  const cases: [QuantConfig, number][] = [
    [{ scheme: "none" }, 32],
    [{ scheme: "bf16" }, 16],
    // int8 row-wise: one byte per weight + one fp32 scale per output row.
    [{ scheme: "int8" }, 8 + 32 / 4096],
    // nf4 block 64: 4 bits + one fp32 absmax per 64 weights.
    [{ scheme: "nf4", blockSize: 64 }, 4 + 32 / 64],
    // nf4 + double quant (QLoRA sec. 3): 8-bit absmax per 64, fp32 scale per 256 blocks, one fp32 mean.
    [{ scheme: "nf4", blockSize: 64, doubleQuant: true }, 4 + 8 / 64 + 32 / (64 * 256) + 32 / n],
  ];
  for (const [config, bits] of cases) {
    const qw = quantize(w, shape, config);
    assert.ok(Math.abs(qw.bitsPerParam - bits) < 1e-12, `${config.scheme}: ${qw.bitsPerParam} vs ${bits}`);
    assert.equal(qw.storedBytes, (bits * n) / 8);
    qw.dispose();
  }
  const dq = quantize(w, shape, { scheme: "nf4", doubleQuant: true });
  assert.ok(Math.abs(dq.bitsPerParam - 4.127) < 5e-4, `QLoRA's ~4.127 bits, got ${dq.bitsPerParam}`);
  dq.dispose();
});

Deno.test("stored bits of the affine and llm-int8 layouts: codes + fp32 scale and zero per group (+ g_idx)", async () => {
  await initBackend("cpu");
  const [rows, cols] = [64, 256];
  const n = rows * cols;
  const w = new Rng(4).normalArray(n);
  const cal = { inputs: new Rng(5).normalArray(2 * cols * cols), rows: 2 * cols };
  const cases: [QuantConfig, number][] = [
    [{ scheme: "llm-int8" }, 8 + 32 / cols],
    [{ scheme: "hqq4" }, 4 + 64 / 64],
    // 3-bit codes: 10 per int32 word, so ceil(n / 10) words.
    [{ scheme: "hqq3", blockSize: 32 }, (Math.ceil(n / 10) * 32) / n + 64 / 32],
    [{ scheme: "hqq2" }, 2 + 64 / 64],
    [{ scheme: "gptq4" }, 4 + 64 / 128],
    // act-order adds one int32 group index per input column: 32 / out bits per parameter.
    [{ scheme: "gptq4", actOrder: true }, 4 + 64 / 128 + 32 / rows],
    [{ scheme: "gptq3", blockSize: 64 }, (Math.ceil(n / 10) * 32) / n + 64 / 64],
  ];
  for (const [config, bits] of cases) {
    const qw = quantize(w, [rows, cols], config, calibrationFor(config, cols) && cal);
    assert.ok(
      Math.abs(qw.bitsPerParam - bits) < 1e-12,
      `${JSON.stringify(config)}: ${qw.bitsPerParam} vs ${bits}`,
    );
    qw.dispose();
  }
});

Deno.test("a resolved config validates again to itself (defaults of other schemes are tolerated)", () => {
  for (const scheme of QUANT_SCHEMES) {
    const resolved = validateQuantConfig({ scheme });
    assert.deepEqual(validateQuantConfig(resolved), resolved);
  }
});

Deno.test("config and weight errors are one clear line", () => {
  const bad: [unknown, RegExp][] = [
    [{ scheme: "int3" }, /unknown quant scheme "int3"/],
    [{ scheme: "int8", doubleQuant: true }, /doubleQuant applies only to 4-bit/],
    [{ scheme: "none", doubleQuant: true }, /doubleQuant applies only to 4-bit/],
    [{ scheme: "fp16", doubleQuant: true }, /doubleQuant applies only to 4-bit/],
    [{ scheme: "nf4", blockSize: 48 }, /power of two in \[16, 4096\]/],
    [{ scheme: "nf4", blockSize: 8 }, /power of two in \[16, 4096\]/],
    [{ scheme: "nf4", blockSize: 8192 }, /power of two in \[16, 4096\]/],
    [{ scheme: "int8", blockSize: 128 }, /blockSize applies only to/],
    [{ scheme: "nf4", outlierThreshold: 5 }, /outlierThreshold applies only to llm-int8/],
    [{ scheme: "llm-int8", outlierThreshold: -1 }, /finite number > 0/],
    [{ scheme: "nf4", blocksize: 64 }, /unknown quant config key 'blocksize'/],
    [{ scheme: "hqq4", doubleQuant: true }, /doubleQuant applies only to 4-bit/],
    [{ scheme: "hqq4", actOrder: true }, /actOrder applies only to gptq4\/gptq3/],
    [{ scheme: "gptq4", damping: 0 }, /damping must be a number in \(0, 1\]/],
    [{ scheme: "gptq4", actOrder: "yes" }, /actOrder must be true or false/],
    [{ scheme: "gptq4", calibrationItems: 0 }, /calibrationItems must be an integer in \[1, 4096\]/],
    [{ scheme: "nf4", calibrationItems: 8 }, /calibrationItems applies only to gptq4\/gptq3/],
    [{ scheme: "hqq3", blockSize: 100 }, /power of two/],
    ["nf4", /must be an object/],
  ];
  for (const [config, re] of bad) {
    assert.throws(
      () => validateQuantConfig(config),
      (e: Error) => re.test(e.message) && !e.message.includes("\n"),
    );
  }
  assert.deepEqual(validateQuantConfig({ scheme: "nf4" }), {
    scheme: "nf4",
    blockSize: 64,
    doubleQuant: false,
    outlierThreshold: 6,
    actOrder: false,
    damping: 0.01,
    calibrationItems: 32,
  });
  // GPTQ's own default group size, 128.
  assert.equal(validateQuantConfig({ scheme: "gptq4" }).blockSize, 128);
  const w = new Float32Array(6);
  assert.throws(() => quantizeCodes(w, [2, 4], { scheme: "nf4" }), /6 values but shape \[2,4\] needs 8/);
  w[1] = NaN;
  assert.throws(() => quantizeCodes(w, [2, 3], { scheme: "nf4" }), /value 1 is NaN/);
  assert.throws(
    () => quantizeCodes(Float32Array.of(7e4), [1, 1], { scheme: "fp16" }),
    /overflows fp16 .* use scheme 'bf16'/,
  );
  assert.throws(
    () => quantizeCodes(new Float32Array(8), [2, 4], { scheme: "gptq4" }),
    /needs calibration inputs/,
  );
  assert.throws(
    () =>
      quantizeCodes(new Float32Array(8), [2, 4], { scheme: "gptq4" }, {
        inputs: new Float32Array(6),
        rows: 2,
      }),
    /6 values but 2 rows x 4 input features need 8/,
  );
});

Deno.test("a short last block (size not divisible by blockSize) is quantized on its own absmax", () => {
  // 1 x 20 with block 16: block 1 holds 4 values whose absmax (0.5) is far below block 0's (8).
  const w = Float32Array.from({ length: 20 }, (_, i) => (i < 16 ? (i === 0 ? 8 : 1) : 0.5));
  const q = quantizeCodes(w, [1, 20], { scheme: "nf4", blockSize: 16 });
  assert.deepEqual(Array.from(q.scales), [8, 0.5]);
  const d = dequantizeArray(q);
  for (let i = 16; i < 20; i++) assert.equal(d[i], 0.5);
});
