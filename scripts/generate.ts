/**
 * `deno task generate --model PATH --prompt TEXT [--max-tokens N] [--top-k K --seed S]`: greedy
 * decoding, or seeded top-k sampling. The text is printed as it is generated, token by token;
 * `--max-tokens` beyond the model's context is capped there, with a one-line notice on stderr.
 * @module
 */
import {
  helpText,
  InputError,
  numberFlag,
  type OptionSpec,
  parseCli,
  runMain,
  UsageError,
} from "../models/util/args.ts";
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { capToContext, DecodeStream, generate } from "../models/generate.ts";
import { Rng } from "../models/util/rng.ts";

/** The command's options (see `--help`). */
export const GENERATE_SPEC = {
  model: { type: "string", default: DEFAULT_MODEL_DIR, help: "llama2.c .bin file or Hugging Face folder" },
  tokenizer: { type: "string", help: "tokenizer file (default: beside the model)" },
  prompt: { type: "string", help: "text to continue" },
  "max-tokens": { type: "string", default: "64", help: "tokens to generate (at most the model's context)" },
  "top-k": { type: "string", default: "0", help: "sample from the k most likely tokens (0: greedy)" },
  temperature: { type: "string", default: "1", help: "sampling temperature" },
  seed: { type: "string", default: "0", help: "seed for sampling" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Where the command writes: generated text (as it comes) and one-line notices. */
export interface GenerateOutput {
  text: (piece: string) => Promise<void>;
  notice: (line: string) => void;
}

/** Write all of `bytes` to `w` (a single write may take only part). */
async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await w.write(bytes.subarray(off));
}

const encoder = new TextEncoder();

/** The process's stdout (text) and stderr (notices). */
export const STDIO: GenerateOutput = {
  text: (piece) => writeAll(Deno.stdout, encoder.encode(piece)),
  notice: (line) => console.error(line),
};

/**
 * Run the command on `args`: validate, load the model, then write the prompt and each generated
 * piece to `out.text` as soon as it is decoded, ending with a newline.
 */
export async function generateCommand(
  args: string[],
  out: GenerateOutput = STDIO,
  startWork: () => void = () => {},
): Promise<void> {
  const { values: o } = parseCli(args, GENERATE_SPEC);
  if (o.help) {
    return out.text(helpText("deno task generate --model PATH --prompt TEXT", GENERATE_SPEC) + "\n");
  }
  if (o.prompt === undefined) throw new UsageError("give --prompt TEXT");
  const requested = numberFlag("max-tokens", o["max-tokens"], (n) => Number.isInteger(n) && n > 0);
  const topK = numberFlag("top-k", o["top-k"], (n) => Number.isInteger(n) && n >= 0);
  const temperature = numberFlag("temperature", o.temperature, (n) => n > 0);
  const seed = numberFlag("seed", o.seed, Number.isInteger);
  out.notice(describeBackend(await initBackend(o.backend as BackendName)));
  const { model, tokenizer } = await loadModel(o.model, o.tokenizer);
  const prompt = tokenizer.encode(o.prompt, { bos: true });
  const { maxSeqLen } = model.config;
  let budget;
  try {
    budget = capToContext(maxSeqLen, prompt.length, requested);
  } catch (err) {
    throw new InputError(`--prompt: ${(err as Error).message}`);
  }
  if (budget.capped) {
    out.notice(
      `generate: --max-tokens ${requested} capped at ${budget.maxNewTokens}: the model's context is ${maxSeqLen} tokens and the prompt uses ${prompt.length}`,
    );
  }
  startWork();
  const stream = new DecodeStream((ids) => tokenizer.decode(ids));
  await out.text(o.prompt);
  await generate(model, prompt, {
    maxNewTokens: budget.maxNewTokens,
    strategy: topK > 0 ? "top-k" : "greedy",
    topK,
    temperature,
    rng: new Rng(seed),
    stopIds: [tokenizer.eosId, tokenizer.bosId].filter((x): x is number => x !== null),
    onToken: async (id) => {
      const piece = stream.push(id);
      if (piece) await out.text(piece);
    },
  });
  await out.text(stream.flush() + "\n");
}

if (import.meta.main) await runMain((startWork) => generateCommand(Deno.args, STDIO, startWork));
