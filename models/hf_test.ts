import assert from "node:assert/strict";
import { join } from "node:path";
import { validateConfig } from "./config.ts";
import { configFromHf, configToHf, inspectHfFolder, readHfFolder, writeHfFolder } from "./hf.ts";
import { LlamaModel, ropeInvFreq } from "./llama.ts";
import { namedModel } from "./named_models.ts";
import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors.ts";

/** A tiny untied Llama whose MLP is not square (dim 16, hidden 48), so a transposed matrix has the same size. */
const CONFIG = validateConfig({
  dim: 16,
  hiddenDim: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 32,
  maxSeqLen: 32,
  ropeStyle: "half",
});

/** Write the tiny model (weights 0, 1, 2, ... per tensor) as a Hugging Face folder in a temp dir. */
async function tinyFolder(): Promise<string> {
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of LlamaModel.parameterShapes(CONFIG)) {
    weights.set(name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i % 7));
  }
  const dir = await Deno.makeTempDir({ prefix: "hf_test_" });
  await writeHfFolder(dir, CONFIG, weights);
  return dir;
}

/** Rewrite `model.safetensors` after `edit` changes its tensors (name -> {data, shape, dtype}). */
async function editTensors(
  dir: string,
  edit: (t: Map<string, { data: Float32Array | Int32Array | Uint8Array; shape: number[] }>) => void,
): Promise<void> {
  const path = join(dir, "model.safetensors");
  const { tensors } = await readSafetensorsFile(path);
  const map = new Map([...tensors].map(([n, t]) => [n, { data: t.data, shape: t.shape }]));
  edit(map);
  await writeSafetensorsFile(path, map);
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, "config.json");
  const c = JSON.parse(await Deno.readTextFile(path));
  edit(c);
  await Deno.writeTextFile(path, JSON.stringify(c));
}

async function withFolder(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tinyFolder();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DOWN = "model.layers.1.mlp.down_proj.weight";

Deno.test("hf: a tensor with the right size but the wrong shape is refused, naming tensor, file and both shapes", () =>
  withFolder(async (dir) => {
    assert.equal((await readHfFolder(dir)).weights.size, LlamaModel.parameterShapes(CONFIG).size);
    await editTensors(dir, (t) => (t.get(DOWN)!.shape = [48, 16]));
    const err = new RegExp(
      `^Error: ${dir}/model\\.safetensors: tensor '${DOWN}' has shape \\[48, 16\\] but ${dir}/config\\.json implies \\[16, 48\\]; the weights do not match the config$`,
    );
    await assert.rejects(readHfFolder(dir), err);
    await assert.rejects(inspectHfFolder(dir), err);
    // A vector where a matrix belongs, with the same element count, is refused too.
    await editTensors(dir, (t) => (t.get(DOWN)!.shape = [768]));
    await assert.rejects(readHfFolder(dir), /has shape \[768\] but .* implies \[16, 48\]/);
  }));

Deno.test("hf: num_hidden_layers far too large fails at once on the config, before any allocation", () =>
  withFolder(async (dir) => {
    await editConfig(dir, (c) => (c.num_hidden_layers = 100000000));
    const t0 = performance.now();
    await assert.rejects(
      readHfFolder(dir),
      /config\.json: num_hidden_layers is 100000000, above the limit of 4096; fix the config$/,
    );
    assert.ok(performance.now() - t0 < 5000);
  }));

Deno.test("hf: num_hidden_layers is checked against the layers the weights hold", () =>
  withFolder(async (dir) => {
    await editConfig(dir, (c) => (c.num_hidden_layers = 3));
    await assert.rejects(
      readHfFolder(dir),
      /config\.json: num_hidden_layers is 3 but the safetensors files hold 2 layers \(indices 0 to 1\); fix num_hidden_layers/,
    );
    await editConfig(dir, (c) => (c.num_hidden_layers = 1));
    await assert.rejects(readHfFolder(dir), /num_hidden_layers is 1 but the safetensors files hold 2 layers/);
  }));

Deno.test("hf: other config fields disagreeing with the weights name the tensor", () =>
  withFolder(async (dir) => {
    await editConfig(dir, (c) => (c.vocab_size = 64));
    await assert.rejects(
      readHfFolder(dir),
      /model\.safetensors: tensor 'lm_head\.weight' has shape \[32, 16\] but .*config\.json implies \[64, 16\]/,
    );
    await editConfig(dir, (c) => {
      c.vocab_size = 32;
      c.num_attention_heads = 0;
    });
    await assert.rejects(
      readHfFolder(dir),
      /config\.json: num_attention_heads must be a positive integer, got 0/,
    );
  }));

Deno.test("hf: missing, unexpected and non-float tensors", () =>
  withFolder(async (dir) => {
    await editTensors(dir, (t) => t.delete("lm_head.weight"));
    await assert.rejects(
      readHfFolder(dir),
      /: missing tensor 'lm_head\.weight' \(shape \[32, 16\]\) required by .*config\.json$/,
    );
    await editTensors(dir, (t) => {
      t.set("lm_head.weight", { data: new Float32Array(512), shape: [32, 16] });
      t.set("model.layers.0.self_attn.q_proj.bias", { data: new Float32Array(16), shape: [16] });
    });
    await assert.rejects(
      readHfFolder(dir),
      /model\.safetensors: unexpected tensor 'model\.layers\.0\.self_attn\.q_proj\.bias', not part of a LlamaForCausalLM/,
    );
    await editTensors(dir, (t) => {
      t.delete("model.layers.0.self_attn.q_proj.bias");
      t.set("model.norm.weight", { data: new Int32Array(16), shape: [16] });
    });
    await assert.rejects(
      readHfFolder(dir),
      /tensor 'model\.norm\.weight' has dtype I32; model weights must be F32/,
    );
  }));

Deno.test("hf: a truncated file or a header that lies about offsets names the file", () =>
  withFolder(async (dir) => {
    const path = join(dir, "model.safetensors");
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(
      readHfFolder(dir),
      new RegExp(`^Error: ${path}: truncated: tensor ".*" data ends at byte`),
    );
    // Same bytes, but the header shifts the first tensor by 4 bytes: a hole, and one tensor past the end.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const first = Object.keys(header).find((k) => header[k].data_offsets?.[0] === 0)!;
    header[first].data_offsets = header[first].data_offsets.map((o: number) => o + 4);
    const json = new TextEncoder().encode(JSON.stringify(header).padEnd(n, " "));
    const lied = bytes.slice();
    lied.set(json, 8);
    await Deno.writeFile(path, lied);
    await assert.rejects(readHfFolder(dir), new RegExp(`^Error: ${path}: .*(overlap|belong to no tensor)`));
    await Deno.remove(path);
    await assert.rejects(
      readHfFolder(dir),
      /has neither model\.safetensors nor model\.safetensors\.index\.json \(check --model\)/,
    );
  }));

Deno.test("hf: sharded folders: a shard outside the folder, a missing shard, a lying index, a duplicate", () =>
  withFolder(async (dir) => {
    const { tensors } = await readSafetensorsFile(join(dir, "model.safetensors"));
    const names = [...tensors.keys()];
    const half = Math.ceil(names.length / 2);
    const groups = [names.slice(0, half), names.slice(half)];
    const files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    const weightMap: Record<string, string> = {};
    for (const [i, group] of groups.entries()) {
      await writeSafetensorsFile(join(dir, files[i]), new Map(group.map((n) => [n, tensors.get(n)!])));
      for (const n of group) weightMap[n] = files[i];
    }
    await Deno.remove(join(dir, "model.safetensors"));
    const index = join(dir, "model.safetensors.index.json");
    const writeIndex = (map: Record<string, string>) =>
      Deno.writeTextFile(index, JSON.stringify({ weight_map: map }));
    await writeIndex(weightMap);
    assert.equal((await readHfFolder(dir)).weights.size, names.length);

    await writeIndex({ ...weightMap, [names[0]]: "../outside.safetensors" });
    await assert.rejects(
      readHfFolder(dir),
      /index\.json: weight_map\['.*'\] is "\.\.\/outside\.safetensors"; it must name a \.safetensors file in the folder/,
    );
    await writeIndex({ ...weightMap, [names[0]]: "model-00003-of-00002.safetensors" });
    await assert.rejects(
      readHfFolder(dir),
      /model-00003-of-00002\.safetensors is listed in model\.safetensors\.index\.json but missing/,
    );
    await writeIndex({ ...weightMap, [names[0]]: files[1] });
    await assert.rejects(
      readHfFolder(dir),
      new RegExp(
        `${files[1]}: has no tensor '${
          names[0].replaceAll(".", "\\.")
        }' although model\\.safetensors\\.index\\.json`,
      ),
    );
    await writeIndex(weightMap);
    await writeSafetensorsFile(
      join(dir, files[1]),
      new Map([...groups[1], names[0]].map((n) => [n, tensors.get(n)!])),
    );
    await assert.rejects(
      readHfFolder(dir),
      new RegExp(`tensor '${names[0].replaceAll(".", "\\.")}' is also in`),
    );
  }));

Deno.test("rope_scaling: Llama 3.2's llama3 scaling matches transformers' _compute_llama3_parameters", () => {
  const config = configFromHf(namedModel("llama-3.2-1b").config);
  assert.deepEqual(config.ropeScaling, {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  const scaled = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
  const plain = ropeInvFreq(config.headDim, config.ropeTheta);
  // Reference: transformers' _compute_llama3_parameters retyped in float64 with PyTorch 1.13
  // (theta 500000, head_dim 64): pairs 0-14 keep their frequency (wavelength < 8192 / 4), 15-17
  // are blended, 18-31 are divided by 32 (wavelength > 8192).
  for (let i = 0; i <= 14; i++) assert.equal(scaled[i], plain[i], `pair ${i}`);
  const blended = [0.0012905479282092638, 0.00042955679655936815, 9.70828780262767e-05];
  blended.forEach((want, k) => assert.ok(Math.abs(scaled[15 + k] - want) <= 1e-15 * want, `pair ${15 + k}`));
  for (let i = 18; i < 32; i++) assert.ok(Math.abs(scaled[i] - plain[i] / 32) <= 1e-18, `pair ${i}`);
  // The config round-trips through config.json.
  assert.deepEqual(configFromHf(configToHf(config)).ropeScaling, config.ropeScaling);
});

Deno.test("rope_scaling: none and default change nothing, linear divides, unknown types are refused", () => {
  const base = namedModel("qwen3-0.6b").config;
  assert.equal(configFromHf(base).ropeScaling, null);
  assert.equal(configFromHf({ ...base, rope_scaling: { rope_type: "default" } }).ropeScaling, null);
  const linear = configFromHf({ ...base, rope_scaling: { type: "linear", factor: 4 } });
  const f = ropeInvFreq(linear.headDim, linear.ropeTheta, linear.ropeScaling);
  assert.equal(f[0], 0.25);
  assert.throws(
    () => configFromHf({ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } }, "m/config.json"),
    /^Error: m\/config\.json: rope_scaling type 'yarn' is not supported \(peft-bench applies linear and llama3\)/,
  );
  assert.throws(
    () => configFromHf({ ...base, rope_scaling: { rope_type: "linear" } }),
    /rope_scaling\.factor must be a positive number/,
  );
});
