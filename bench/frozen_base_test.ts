import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { initBackend } from "../models/backend.ts";
import { STORIES_MODEL } from "../models/fixtures.ts";
import { LlamaModel } from "../models/llama.ts";
import { parseCli } from "../models/util/args.ts";
import { Rng } from "../models/util/rng.ts";
import { QuantizedLinear } from "../methods/quant/linear.ts";
import { dequantizeArray, quantizeCodes } from "../methods/quant/reference.ts";
import { LoraLinear } from "../methods/lora.ts";
import { tinyModel as tinyModelOf } from "../methods/tiny_test_utils.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { buildRunConfigs } from "./config.ts";
import { resolveRun } from "./run_resolve.ts";
import { frozenFootprint, quantizeFrozenBase, quantSummary } from "./frozen_base.ts";
import { applyMethod, methodContext } from "./apply_method.ts";

await initBackend("cpu");

const tinyModel = () => tinyModelOf(5);

/** A run resolved from bench flags (the model path only has to exist; the tests use the tiny model). */
function run(args: string[]) {
  const { values } = parseCli(["--model", STORIES_MODEL, ...args], BENCH_SPEC);
  return resolveRun(buildRunConfigs(values as Record<string, unknown>)[0]);
}

function denseOf(model: LlamaModel, name: string): Float32Array {
  return tf.tidy(() => model.linear(name).denseWeight().dataSync() as Float32Array);
}

/** Row-major B [out, r] times A [r, in], in float64. */
function product(b: Float32Array, a: Float32Array, out: number, r: number, inF: number): Float64Array {
  const p = new Float64Array(out * inF);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inF; j++) for (let k = 0; k < r; k++) p[i * inF + j] += b[i * r + k] * a[k * inF + j];
  }
  return p;
}

Deno.test("frozen base: LoftQ (T = 1) on the plan's layers is q(W) plus the best rank-r fit of W - q(W) (Eckart-Young)", () => {
  const model = tinyModel();
  const r = run(["--method", "lora", "--rank", "2", "--quant", "nf4", "--loftq", "1"]);
  const original = new Map([...model.linears.keys()].map((n) => [n, denseOf(model, n)]));
  const factors = quantizeFrozenBase(model, r);
  // The plan is LoRA's q+v targets at its rank.
  assert.deepEqual([...factors.keys()].sort(), [
    "layers.0.attn.q",
    "layers.0.attn.v",
    "layers.1.attn.q",
    "layers.1.attn.v",
  ]);
  for (const [name, layer] of model.linears) {
    assert.ok(layer instanceof QuantizedLinear, `${name} is quantized`);
    assert.ok(!model.params.has(`${name}.weight`), `${name}'s fp32 weight is freed`);
  }
  for (const [name, f] of factors) {
    const w = original.get(name)!;
    const [out, inF] = [model.linear(name).outFeatures, model.linear(name).inFeatures];
    assert.equal(f.a.length, 2 * inF);
    assert.equal(f.b.length, out * 2);
    // Alg. 1 at t = 1: Q_1 = q(W), from the reference quantizer.
    const qw = dequantizeArray(quantizeCodes(w, [out, inF], { scheme: "nf4" }));
    assert.deepEqual(denseOf(model, name), qw);
    // B A is the best rank-2 approximation of R = W - q(W): ||R - B A||_F^2 = sum_{k > 2} sigma_k^2.
    const residual = new Matrix(out, inF);
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < inF; j++) residual.set(i, j, w[i * inF + j] - qw[i * inF + j]);
    }
    const sigma = new SingularValueDecomposition(residual, { autoTranspose: true }).diagonal;
    const tail = sigma.slice(2).reduce((s, x) => s + x * x, 0);
    const ba = product(f.b, f.a, out, 2, inF);
    let err = 0;
    let qloraErr = 0;
    for (let i = 0; i < w.length; i++) {
      err += (w[i] - qw[i] - ba[i]) ** 2;
      qloraErr += (w[i] - qw[i]) ** 2;
    }
    assert.ok(Math.abs(err - tail) < 1e-5 * qloraErr + 1e-12, `${name}: ${err} vs ${tail}`);
    assert.ok(err < qloraErr, `${name}: LoftQ error below QLoRA's`);
  }
  model.dispose();
});

Deno.test("LoRA starts from the frozen base's LoftQ factors: W' = Q + s B' A' = Q + B A, B' = B / s as float32 division", () => {
  for (const method of ["lora", "rslora"]) {
    const model = tinyModel();
    const r = run(["--method", method, "--rank", "2", "--alpha", "16", "--quant", "nf4", "--loftq", "2"]);
    const factors = quantizeFrozenBase(model, r);
    const q = new Map([...factors.keys()].map((n) => [n, denseOf(model, n)]));
    const applied = applyMethod(model, r, methodContext(r, new Rng(0).fork("method"), 10, factors));
    const scale = method === "lora" ? 16 / 2 : 16 / Math.sqrt(2);
    for (const [name, f] of factors) {
      const layer = model.linear(name);
      assert.ok(layer instanceof LoraLinear);
      assert.equal(layer.scale, scale);
      const [out, inF] = [layer.outFeatures, layer.inFeatures];
      assert.deepEqual(layer.a.dataSync(), f.a);
      // The division as tfjs does it on a float32 tensor (the harness's arithmetic before the stage).
      const expectedB = tf.tidy(() => tf.div(tf.tensor(f.b, [out, 2]), scale).dataSync());
      assert.deepEqual(layer.b.dataSync(), expectedB);
      const adapted = tf.tidy(() => tf.add(layer.base.denseWeight(), layer.delta()).dataSync());
      const target = product(f.b, f.a, out, 2, inF);
      const qw = q.get(name)!;
      let worst = 0;
      for (let i = 0; i < adapted.length; i++) {
        worst = Math.max(worst, Math.abs(adapted[i] - (qw[i] + target[i])));
      }
      assert.ok(worst < 1e-5, `${method} ${name}: |W' - (Q + B A)| = ${worst}`);
    }
    applied.dispose();
    model.dispose();
  }
});

Deno.test("LoRA refuses LoftQ factors for a layer it does not adapt", () => {
  const model = tinyModel();
  const r = run(["--method", "lora", "--rank", "2", "--quant", "nf4", "--loftq", "1"]);
  const factors = quantizeFrozenBase(model, r);
  const stray = new Map([...factors, ["layers.0.mlp.up", factors.get("layers.0.attn.q")!]]);
  assert.throws(
    () => applyMethod(model, r, methodContext(r, new Rng(0), 10, stray)),
    /^Error: --loftq: factors for layers\.0\.mlp\.up, which --targets does not adapt$/,
  );
  model.dispose();
});

Deno.test("frozen footprint: fp32 bytes of every frozen value; nf4 packs the decoder linears to 4 + 32/64 bits", () => {
  const model = tinyModel();
  // embed 32x16; per layer two norms of 16, q 16x16, k and v 8x16, o 16x16, gate/up 24x16, down 16x24; final norm.
  const perLayer = 2 * 16 + 256 + 128 + 128 + 256 + 3 * 384;
  const linears = 2 * (256 + 128 + 128 + 256 + 3 * 384);
  const total = 32 * 16 + 2 * perLayer + 16;
  assert.deepEqual(frozenFootprint(model, new Set()), { bytes: 4 * total, params: total });
  // A trainable variable is not frozen.
  const norm = model.params.get("norm.weight")!;
  assert.deepEqual(frozenFootprint(model, new Set([norm])), { bytes: 4 * (total - 16), params: total - 16 });
  const r = run(["--quant", "nf4"]);
  quantizeFrozenBase(model, r);
  const summary = quantSummary(model, r.config, {})!;
  // QLoRA's storage: 4-bit codes plus one fp32 absmax per 64-block (every linear here is a multiple of 64).
  assert.equal(summary.bitsPerParam, 4 + 32 / 64);
  assert.equal(summary.linearBytes, (linears * (4 + 32 / 64)) / 8);
  assert.equal(summary.dequantCostMs, null);
  const packed = frozenFootprint(model, new Set());
  assert.deepEqual(packed, { bytes: 4 * (total - linears) + summary.linearBytes, params: total });
  model.dispose();
});

Deno.test({
  name:
    "frozen base off the heap: the footprint counts the stored weights; quantizing decodes without leaking",
  ignore: !(await initBackend("native").then(() => true, () => false)),
  fn: async () => {
    const { loadModel } = await import("../models/load.ts");
    const { STORIES_TOKENIZER } = await import("../models/fixtures.ts");
    await initBackend("native");
    const heap = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "never" });
    const off = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "always" });
    try {
      assert.ok(off.model.storedWeights.size > 0);
      // float32 checkpoint stored as is: the same bytes and parameters wherever they live.
      assert.deepEqual(frozenFootprint(off.model, new Set()), frozenFootprint(heap.model, new Set()));
      const r = resolveRun(
        buildRunConfigs(
          parseCli(["--model", STORIES_MODEL, "--quant", "nf4"], BENCH_SPEC).values as Record<
            string,
            unknown
          >,
        )[0],
      );
      // Each of the 35 decoder linears holds its packed codes and block constants instead of its weight:
      // off the heap that adds exactly what the heap model adds plus the variable it frees there.
      const count = (model: typeof off.model) => {
        const before = tf.memory().numTensors;
        quantizeFrozenBase(model, r);
        return tf.memory().numTensors - before;
      };
      assert.equal(count(off.model), count(heap.model) + 35);
      // The replaced layers' stored weights are released; the embedding table stays.
      assert.deepEqual([...off.model.storedWeights.keys()], ["embed.weight"]);
      assert.equal(
        quantSummary(off.model, r.config, {})!.bitsPerParam,
        quantSummary(heap.model, r.config, {})!.bitsPerParam,
      );
    } finally {
      heap.model.dispose();
      off.model.dispose();
    }
  },
});

Deno.test({
  name: "quantizing leaves nothing holding the replaced stored tables: a full collection frees them",
  ignore: !(await initBackend("native").then(() => true, () => false)) ||
    typeof (globalThis as { gc?: unknown }).gc !== "function",
  fn: async () => {
    const { loadModel } = await import("../models/load.ts");
    const { STORIES_TOKENIZER } = await import("../models/fixtures.ts");
    await initBackend("native");
    const { model } = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "always" });
    try {
      const refs = [...model.storedWeights.keys()].filter((name) => name.startsWith("layers."))
        .map((name) => [name, new WeakRef(model.storedWeights.get(name)!)] as const);
      assert.equal(refs.length, 35);
      const embed = new WeakRef(model.storedWeights.get("embed.weight")!);
      // A WeakRef's target stays alive until the job that made it ends.
      await new Promise((resolve) => setTimeout(resolve, 0));
      quantizeFrozenBase(model, run(["--quant", "nf4"]));
      assert.deepEqual(refs.filter(([, ref]) => ref.deref() !== undefined).map(([name]) => name), []);
      assert.ok(embed.deref() !== undefined, "the embedding table is still in use");
    } finally {
      model.dispose();
    }
  },
});

Deno.test("output error: ||f(X) - f_q(X)||^2 / ||f(X)||^2 on the recorded rows (closed form for a scaled weight)", async () => {
  const { outputRelativeError } = await import("./frozen_base.ts");
  const { Linear } = await import("../models/linear.ts");
  const { variableOf } = await import("../models/variables.ts");
  await initBackend("cpu");
  const rng = new Rng(11);
  const w = Float32Array.from({ length: 6 * 5 }, () => rng.normal());
  const x = Float32Array.from({ length: 7 * 5 }, () => rng.normal());
  const layer = (scale: number) =>
    new Linear("l", variableOf(() => tf.tensor2d(w.map((v) => v * scale), [6, 5]), false));
  const base = layer(1);
  const eps = 0.03;
  // f_q = (1 + eps) f, so the error is eps^2 whatever X is.
  const e = outputRelativeError(base, layer(1 + eps), { inputs: x, rows: 7 });
  assert.ok(Math.abs(e - eps * eps) < 1e-6, String(e));
  assert.equal(outputRelativeError(base, base, { inputs: x, rows: 7 }), 0);
});
