/**
 * `deno task generate --model PATH --prompt TEXT [--max-tokens N] [--top-k K --seed S]`: greedy
 * decoding, or seeded top-k sampling.
 * @module
 */
import { helpText, numberFlag, type OptionSpec, parseCli, runMain, UsageError } from "../bench/args.ts";
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { generate } from "../models/generate.ts";
import { Rng } from "../models/rng.ts";

const SPEC = {
  model: { type: "string", default: DEFAULT_MODEL_DIR, help: "llama2.c .bin file or Hugging Face folder" },
  tokenizer: { type: "string", help: "tokenizer file (default: beside the model)" },
  prompt: { type: "string", help: "text to continue" },
  "max-tokens": { type: "string", default: "64", help: "tokens to generate" },
  "top-k": { type: "string", default: "0", help: "sample from the k most likely tokens (0: greedy)" },
  temperature: { type: "string", default: "1", help: "sampling temperature" },
  seed: { type: "string", default: "0", help: "seed for sampling" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

await runMain(async () => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("deno task generate --model PATH --prompt TEXT", SPEC));
  if (o.prompt === undefined) throw new UsageError("give --prompt TEXT");
  const maxNewTokens = numberFlag("max-tokens", o["max-tokens"], (n) => Number.isInteger(n) && n > 0);
  const topK = numberFlag("top-k", o["top-k"], (n) => Number.isInteger(n) && n >= 0);
  const temperature = numberFlag("temperature", o.temperature, (n) => n > 0);
  const seed = numberFlag("seed", o.seed, Number.isInteger);
  console.error(describeBackend(await initBackend(o.backend as BackendName)));
  const { model, tokenizer } = await loadModel(o.model, o.tokenizer);
  const prompt = tokenizer.encode(o.prompt, { bos: true });
  const stopIds = [tokenizer.eosId, tokenizer.bosId].filter((x): x is number => x !== null);
  const out = await generate(model, prompt, {
    maxNewTokens,
    strategy: topK > 0 ? "top-k" : "greedy",
    topK,
    temperature,
    rng: new Rng(seed),
    stopIds,
  });
  console.log(o.prompt + tokenizer.decode(out));
});
