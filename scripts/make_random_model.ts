/**
 * `deno run --allow-read --allow-write scripts/make_random_model.ts --out DIR [--model qwen3-0.6b]
 * [--seed N] [--tokenizer FILE]`: a randomly initialised Hugging Face folder with the exact
 * published config of a named model, bfloat16 weights and a real tokenizer, for measuring memory
 * and speed at real size without a hub. The folder is marked synthetic in `config.json`
 * (`peft_bench_synthetic: true`) and in its README: its quality numbers mean nothing.
 *
 * Weights are drawn as `LlamaModel.random` draws them (normal(0, 0.02), output projections scaled
 * by 1/sqrt(2 layers), unit norm gains; every tensor from the seeded generator forked by its name)
 * and written one tensor at a time, so the peak memory is one tensor, not the model.
 * @module
 */
import { join } from "node:path";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { configFromHf, toHfName } from "../models/hf.ts";
import { LlamaModel } from "../models/llama.ts";
import { f32ToBf16Bits } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { Rng } from "../models/util/rng.ts";

/** Published `config.json` fields of each named model (Hugging Face hub, main revision). */
export const MODEL_CONFIGS: Record<string, Record<string, unknown>> = {
  "qwen3-0.6b": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    max_position_embeddings: 40960,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    attention_bias: false,
    hidden_act: "silu",
    bos_token_id: 151643,
    eos_token_id: 151645,
    torch_dtype: "bfloat16",
  },
};

/** Where `deno task fetch-tokenizer qwen3 --out FILE` puts Qwen3's tokenizer in the README's example. */
const DEFAULT_TOKENIZER = "/tmp/qwen3-tokenizer.json";

const SPEC = {
  out: { type: "string", help: "folder to write (created; must not hold a model.safetensors)" },
  model: { type: "string", default: "qwen3-0.6b", help: `config: ${Object.keys(MODEL_CONFIGS).join(", ")}` },
  seed: { type: "string", default: "0", help: "seed of the weights" },
  tokenizer: { type: "string", default: DEFAULT_TOKENIZER, help: "tokenizer.json to copy into the folder" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Values of one tensor as `LlamaModel.random` initialises it. */
function initValues(name: string, size: number, nLayers: number, rng: Rng, std = 0.02): Float32Array {
  if (name.endsWith("norm.weight")) return new Float32Array(size).fill(1);
  if (name.endsWith(".bias")) return new Float32Array(size);
  const scale = /attn\.o\.|mlp\.down\./.test(name) ? std / Math.sqrt(2 * nLayers) : std;
  return rng.fork(name).normalArray(size, scale);
}

await runMain(async (startWork) => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("scripts/make_random_model.ts --out DIR [--model NAME]", SPEC));
  if (!o.out) throw new UsageError("give --out DIR");
  const hf = MODEL_CONFIGS[o.model as string];
  if (!hf) {
    throw new UsageError(`unknown --model '${o.model}'; known: ${Object.keys(MODEL_CONFIGS).join(", ")}`);
  }
  const seed = Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new UsageError(`--seed must be an integer in [0, 2^32), got '${o.seed}'`);
  }
  let tokenizerJson: string;
  try {
    tokenizerJson = await Deno.readTextFile(o.tokenizer as string);
  } catch {
    throw new InputError(
      `tokenizer not found: ${o.tokenizer}; get it with deno task fetch-tokenizer qwen3 --out ${o.tokenizer}, or pass --tokenizer FILE`,
    );
  }
  const out = o.out as string;
  try {
    await Deno.stat(join(out, "model.safetensors"));
    throw new InputError(`${out} already holds a model.safetensors; pick another --out`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  startWork();
  const config = configFromHf(hf, `${o.model} config`);
  const rng = new Rng(seed);
  // safetensors layout as writeSafetensors makes it: sorted by name (one dtype), data contiguous.
  const tensors = [...LlamaModel.parameterShapes(config)]
    .map(([name, shape]) => ({ name, hfName: toHfName(name), shape, size: shape.reduce((a, b) => a * b, 1) }))
    .sort((a, b) => (a.hfName < b.hfName ? -1 : 1));
  const header: Record<string, unknown> = {
    __metadata__: { format: "pt", peft_bench_synthetic: `random init, seed ${seed}` },
  };
  let offset = 0;
  for (const t of tensors) {
    header[t.hfName] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + 2 * t.size] };
    offset += 2 * t.size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + headerLen).fill(0x20);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerLen), true);
  prefix.set(json, 8);
  await Deno.mkdir(out, { recursive: true });
  const target = join(out, "model.safetensors");
  const tmp = `${target}.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await file.write(prefix);
    for (const t of tensors) {
      const values = initValues(t.name, t.size, config.nLayers, rng);
      const bits = new Uint16Array(t.size);
      for (let i = 0; i < t.size; i++) bits[i] = f32ToBf16Bits(values[i]);
      const bytes = new Uint8Array(bits.buffer);
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    }
  } catch (err) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  file.close();
  await Deno.rename(tmp, target);
  await writeFileAtomic(
    join(out, "config.json"),
    JSON.stringify({ ...hf, peft_bench_synthetic: true, peft_bench_seed: seed }, null, 2) + "\n",
  );
  await writeFileAtomic(join(out, "tokenizer.json"), tokenizerJson);
  await writeFileAtomic(
    join(out, "README.md"),
    `# Synthetic ${o.model} (random weights)\n\nWritten by peft-bench's scripts/make_random_model.ts with seed ${seed}: ` +
      `the published ${o.model} config and tokenizer, RANDOM bfloat16 weights. For memory and speed ` +
      `measurements only; its quality numbers say nothing about the pretrained model.\n`,
  );
  console.log(`wrote ${out} (${(8 + headerLen + offset).toLocaleString("en-US")} bytes of safetensors)`);
});
