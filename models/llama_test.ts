import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, webgpuAdapter } from "./backend.ts";
import { FUSED_KERNELS, registerNativeKernels } from "./native_kernels.ts";
import { openBlas } from "./native.ts";
import { readLlama2c } from "./llama2c.ts";
import { LlamaModel } from "./llama.ts";
import { validateConfig } from "./config.ts";
import { generate } from "./generate.ts";
import { loadLlama2cTokenizer } from "./tokenizers/llama2c.ts";
import { readHfFolder, writeHfFolder } from "./hf.ts";
import { Rng } from "./util/rng.ts";
import {
  STORIES_CONTINUATION,
  STORIES_MODEL,
  STORIES_SENTENCE_IDS,
  STORIES_SENTENCE_LOSS,
  STORIES_TOKENIZER,
} from "./fixtures.ts";

async function stories(): Promise<LlamaModel> {
  const ck = await readLlama2c(STORIES_MODEL);
  return LlamaModel.fromWeights(ck.config, ck.weights);
}

async function meanLoss(model: LlamaModel, ids: number[]): Promise<number> {
  const { loss, sum, perToken } = model.lmLoss(tf.tensor2d([ids], [1, ids.length], "int32"));
  const value = (await loss.data())[0];
  tf.dispose([loss, sum, perToken]);
  return value;
}

const hasOpenBlas = openBlas() !== null;
for (const backend of ["cpu", "wasm", "native"] as const) {
  Deno.test({
    name: `stories260K: mean loss of the fixture sentence is 1.00238 (${backend})`,
    ignore: backend === "native" && !hasOpenBlas,
    fn: async () => {
      await initBackend(backend);
      const model = await stories();
      assert.ok(Math.abs((await meanLoss(model, STORIES_SENTENCE_IDS)) - STORIES_SENTENCE_LOSS) < 1e-4);
      model.dispose();
    },
  });
}

const hasAdapter = (await webgpuAdapter()) !== null;
Deno.test({
  name: "stories260K: mean loss 1.00238 on the webgpu backend (software adapter here)",
  ignore: !hasAdapter,
  fn: async () => {
    await initBackend("webgpu");
    const model = await stories();
    assert.ok(Math.abs((await meanLoss(model, STORIES_SENTENCE_IDS)) - STORIES_SENTENCE_LOSS) < 1e-4);
    model.dispose();
  },
});

Deno.test("stories260K: greedy decoding reproduces the fixture continuation", async () => {
  await initBackend("wasm");
  const model = await stories();
  const tok = await loadLlama2cTokenizer(STORIES_TOKENIZER);
  const prompt = tok.encode("Once upon a time", { bos: true });
  const out = await generate(model, prompt, { maxNewTokens: 30, stopIds: [1, 2] });
  assert.ok(tok.decode(out).startsWith(STORIES_CONTINUATION), tok.decode(out));
  model.dispose();
});

Deno.test("Hugging Face folder written from stories260K (rotate-half q/k) gives the same logits", async () => {
  await initBackend("cpu");
  const ck = await readLlama2c(STORIES_MODEL);
  const dir = await Deno.makeTempDir();
  await writeHfFolder(dir, ck.config, ck.weights);
  const hf = await readHfFolder(dir);
  assert.equal(hf.config.ropeStyle, "half");
  assert.equal(hf.config.architecture, "LlamaForCausalLM");
  const a = LlamaModel.fromWeights(ck.config, ck.weights);
  const b = LlamaModel.fromWeights(hf.config, hf.weights);
  const ids = tf.tensor2d([STORIES_SENTENCE_IDS], [1, STORIES_SENTENCE_IDS.length], "int32");
  const logits = (m: LlamaModel) => m.logits(tf.reshape(m.hidden(ids), [-1, m.config.dim]) as tf.Tensor2D);
  const diff = (await tf.max(tf.abs(tf.sub(logits(a), logits(b)))).data())[0];
  assert.ok(diff < 1e-4, `max abs diff ${diff}`);
  // The q weights really were permuted: the written file differs from the llama2.c layout.
  assert.notDeepEqual(hf.weights.get("layers.0.attn.q.weight"), ck.weights.get("layers.0.attn.q.weight"));
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});

const TINY = validateConfig({
  dim: 8,
  hiddenDim: 12,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 11,
  maxSeqLen: 16,
  qkNorm: true,
  qkvBias: true,
  tiedEmbeddings: false,
});

Deno.test("gradients of the loss match central finite differences (cpu, tiny random model)", async () => {
  await initBackend("cpu");
  const model = LlamaModel.random(TINY, new Rng(7), 0.3);
  const ids = tf.tensor2d([[1, 4, 2, 9, 3, 3, 7], [5, 6, 10, 0, 2, 8, 1]], [2, 7], "int32");
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]], [2, 7], "int32");
  const names = [
    "layers.0.attn.q.weight",
    "layers.1.attn.k.bias",
    "layers.0.mlp.down.weight",
    "norm.weight",
    "lm_head.weight",
  ];
  const vars = names.map((n) => model.param(n));
  for (const v of vars) v.trainable = true;
  const f = () => model.lmLoss(ids, { attentionMask: mask }).loss;
  const { grads } = tf.variableGrads(f, vars);
  const rng = new Rng(3);
  const eps = 1e-2;
  for (const v of vars) {
    const g = await grads[v.name].data();
    const base = await v.data() as Float32Array;
    for (let trial = 0; trial < 3; trial++) {
      const i = rng.int(base.length);
      const at = (delta: number) => {
        const w = base.slice();
        w[i] += delta;
        v.assign(tf.tensor(w, v.shape));
        return tf.tidy(() => f().dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(base, v.shape));
      assert.ok(
        Math.abs(fd - g[i]) < 2e-3 + 0.03 * Math.abs(fd),
        `${v.name}[${i}]: analytic ${g[i]} vs numeric ${fd}`,
      );
    }
  }
  model.dispose();
});

Deno.test("wasm, native and cpu forward passes agree (< 1e-4 relative)", async () => {
  const ids = [[1, 4, 2, 9, 3, 3, 7, 0, 5]];
  const outputs: Float32Array[] = [];
  for (const backend of hasOpenBlas ? ["cpu", "wasm", "native"] as const : ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const model = LlamaModel.random(TINY, new Rng(11), 0.3);
    const h = model.hidden(tf.tensor2d(ids, [1, 9], "int32"));
    outputs.push(await model.logits(tf.reshape(h, [-1, TINY.dim]) as tf.Tensor2D).data() as Float32Array);
    model.dispose();
  }
  const scale = Math.max(...outputs[0].map(Math.abs));
  for (const other of outputs.slice(1)) {
    const diff = Math.max(...outputs[0].map((v, i) => Math.abs(v - other[i])));
    assert.ok(diff / scale < 1e-4, `relative diff ${diff / scale}`);
  }
});

Deno.test("right padding does not change the loss of the real tokens", async () => {
  await initBackend("cpu");
  const model = LlamaModel.random(TINY, new Rng(5), 0.3);
  const alone = await meanLoss(model, [1, 4, 2, 9]);
  const ids = tf.tensor2d([[1, 4, 2, 9, 0, 0], [3, 3, 7, 5, 6, 1]], [2, 6], "int32");
  const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], [2, 6], "int32");
  const per = await model.lmLoss(ids, { attentionMask: mask }).perToken.array();
  const padded = (per[0][0] + per[0][1] + per[0][2]) / 3;
  assert.ok(Math.abs(padded - alone) < 1e-5, `${padded} vs ${alone}`);
  assert.equal(per[0][3], 0);
  model.dispose();
});

Deno.test("grouped-query attention equals multi-head attention with K/V heads repeated", async () => {
  await initBackend("cpu");
  const gqa = LlamaModel.random({ ...TINY, qkNorm: false, qkvBias: false }, new Rng(9), 0.3);
  // Expand each KV head to the query heads of its group: head h uses kv head floor(h / groups).
  const weights = new Map<string, Float32Array>();
  for (const [name, v] of gqa.params) weights.set(name, v.dataSync() as Float32Array);
  const hd = TINY.headDim;
  for (let l = 0; l < TINY.nLayers; l++) {
    for (const kind of ["k", "v"]) {
      const w = weights.get(`layers.${l}.attn.${kind}.weight`)!;
      const rows = new Float32Array(TINY.nHeads * hd * TINY.dim);
      for (let h = 0; h < TINY.nHeads; h++) {
        const kv = Math.floor(h / (TINY.nHeads / TINY.nKvHeads));
        rows.set(w.subarray(kv * hd * TINY.dim, (kv + 1) * hd * TINY.dim), h * hd * TINY.dim);
      }
      weights.set(`layers.${l}.attn.${kind}.weight`, rows);
    }
  }
  const mha = LlamaModel.fromWeights({ ...gqa.config, nKvHeads: TINY.nHeads }, weights);
  const ids = [1, 4, 2, 9, 3, 3, 7];
  assert.ok(Math.abs((await meanLoss(gqa, ids)) - (await meanLoss(mha, ids))) < 1e-5);
  gqa.dispose();
  mha.dispose();
});

Deno.test("bad checkpoints give one clear error each", async () => {
  const bytes = await Deno.readFile(STORIES_MODEL);
  const { parseLlama2c } = await import("./llama2c.ts");
  assert.throws(
    () => parseLlama2c(bytes.subarray(0, 20), "x.bin"),
    /truncated llama2.c checkpoint \(20 bytes/,
  );
  assert.throws(() => parseLlama2c(bytes.subarray(0, 5000), "x.bin"), /x.bin: truncated llama2.c checkpoint/);
  const ck = parseLlama2c(bytes);
  assert.throws(
    () => LlamaModel.fromWeights({ ...ck.config, hiddenDim: 100 }, ck.weights, "m"),
    /m: tensor 'layers.0.mlp.gate.weight' has 11008 values but the config needs shape \[100,64\]/,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ architectures: ["GPT2LMHeadModel"] }));
  await assert.rejects(() => readHfFolder(dir), /unknown architecture 'GPT2LMHeadModel'/);
  await Deno.remove(dir, { recursive: true });
});

/** Gradients of the tiny model's loss w.r.t. named parameters, on cpu and on `other` (wasm by default). */
async function gradientsOnCpuAndWasm(
  seed: number,
  names: string[],
  other: "wasm" | "native" = "wasm",
): Promise<Float32Array[][]> {
  const grads: Float32Array[][] = [];
  for (const backend of ["cpu", other]) {
    await initBackend(backend as "cpu" | "wasm" | "native");
    const model = LlamaModel.random(TINY, new Rng(seed), 0.3);
    const vars = names.map((n) => model.param(n));
    for (const v of vars) v.trainable = true;
    const ids = tf.tensor2d([[1, 4, 2, 9, 3, 3, 7], [5, 6, 10, 0, 2, 8, 1]], [2, 7], "int32");
    const { grads: g } = tf.variableGrads(() => model.lmLoss(ids).loss, vars);
    grads.push(vars.map((v) => g[v.name].dataSync() as Float32Array));
    model.dispose();
  }
  return grads;
}

function assertSameGradients([cpu, wasm]: Float32Array[][]): void {
  cpu.forEach((g, i) => {
    const scale = Math.max(...g.map(Math.abs));
    g.forEach((v, j) =>
      assert.ok(Math.abs(v - wasm[i][j]) <= 1e-4 * scale, `var ${i}[${j}]: ${v} vs ${wasm[i][j]}`)
    );
  });
}

Deno.test("wasm's transpose-free gradients equal the cpu backend's (frozen linears, attention)", async () => {
  // Gradients w.r.t. norm gains flow back through every frozen linear and both attention matmuls.
  assertSameGradients(
    await gradientsOnCpuAndWasm(21, [
      "layers.0.attn_norm.weight",
      "layers.1.mlp_norm.weight",
      "lm_head.weight",
    ]),
  );
});

Deno.test("wasm's weight gradients equal the cpu backend's (full fine-tuning; embedding through gather)", async () => {
  assertSameGradients(
    await gradientsOnCpuAndWasm(22, [
      "layers.0.attn.q.weight",
      "layers.1.mlp.down.weight",
      "layers.0.attn.v.bias",
      "embed.weight",
    ]),
  );
});

Deno.test("Hugging Face folders: Qwen2 (q/k/v bias) and Qwen3 (q/k norm) round-trip, also sharded", async () => {
  await initBackend("cpu");
  const ids = tf.tensor2d([[1, 4, 2, 9, 3]], [1, 5], "int32");
  const logits = (m: LlamaModel) =>
    m.logits(tf.reshape(m.hidden(ids), [-1, m.config.dim]) as tf.Tensor2D).dataSync();
  for (
    const [architecture, extra] of [
      ["Qwen2ForCausalLM", { qkvBias: true, qkNorm: false }],
      ["Qwen3ForCausalLM", { qkvBias: false, qkNorm: true }],
    ] as const
  ) {
    const model = LlamaModel.random({ ...TINY, ...extra, architecture, ropeStyle: "half" }, new Rng(3), 0.3);
    const weights = new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
    const dir = await Deno.makeTempDir();
    await writeHfFolder(dir, model.config, weights);
    const back = await readHfFolder(dir);
    assert.equal(back.config.architecture, architecture);
    assert.equal(back.config.qkvBias, extra.qkvBias);
    assert.equal(back.config.qkNorm, extra.qkNorm);
    const loaded = LlamaModel.fromWeights(back.config, back.weights);
    const a = logits(model);
    const b = logits(loaded);
    assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-5));
    // Split the file into two shards with an index, as large checkpoints ship.
    const { readSafetensorsFile, writeSafetensorsFile } = await import("./safetensors.ts");
    const { tensors } = await readSafetensorsFile(`${dir}/model.safetensors`);
    const names = [...tensors.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, group] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensorsFile(`${dir}/${file}`, new Map(group.map((n) => [n, tensors.get(n)!])));
      for (const n of group) weightMap[n] = file;
    }
    await Deno.remove(`${dir}/model.safetensors`);
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: weightMap }),
    );
    const sharded = LlamaModel.fromWeights(
      (await readHfFolder(dir)).config,
      (await readHfFolder(dir)).weights,
    );
    const c = logits(sharded);
    assert.ok(a.every((v, i) => Math.abs(v - c[i]) < 1e-5));
    // A folder without tokenizer.json is refused with a clear error.
    const { loadModel } = await import("./load.ts");
    await assert.rejects(
      () => loadModel(dir),
      /tokenizer not found: .*tokenizer.json \(pass --tokenizer PATH\)/,
    );
    for (const m of [model, loaded, sharded]) m.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

const FULL_FT = [
  "layers.0.attn.q.weight",
  "layers.1.mlp.down.weight",
  "layers.0.attn_norm.weight",
  "embed.weight",
];

Deno.test({
  name: "native's gradients equal the cpu backend's, with the fused kernels and without them",
  ignore: !hasOpenBlas,
  fn: async () => {
    assertSameGradients(await gradientsOnCpuAndWasm(23, FULL_FT, "native"));
    // Without the library (not built): the same ops as tfjs graphs over native's matmuls.
    const fused = FUSED_KERNELS.filter((name) => tf.getKernel(name, "native"));
    for (const name of fused) tf.unregisterKernel(name, "native");
    try {
      assertSameGradients(await gradientsOnCpuAndWasm(23, FULL_FT, "native"));
    } finally {
      registerNativeKernels("native");
    }
  },
});
