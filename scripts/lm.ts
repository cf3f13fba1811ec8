/**
 * `deno task lm --model PATH [--tokenizer PATH] --text-file FILE [--json]`: mean next-token
 * cross-entropy (nats), perplexity and token count of a text; long texts in rolling windows.
 * @module
 */
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { scoreText } from "../bench/tasks/lm_score.ts";
import {
  bitsPerByte,
  bytePerplexity,
  tokenPerplexity,
  wordCount,
  wordPerplexity,
} from "../bench/metrics/lm.ts";

const SPEC = {
  model: { type: "string", default: DEFAULT_MODEL_DIR, help: "llama2.c .bin file or Hugging Face folder" },
  tokenizer: { type: "string", help: "tokenizer file (default: beside the model)" },
  "text-file": { type: "string", help: "UTF-8 text to score" },
  text: { type: "string", help: "text to score, instead of --text-file" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  json: { type: "boolean", default: false, help: "print JSON" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

await runMain(async (startWork) => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("deno task lm --model PATH --text-file FILE [--json]", SPEC));
  if (!o["text-file"] && o.text === undefined) throw new UsageError("give --text-file FILE or --text TEXT");
  let text = o.text;
  if (o["text-file"]) {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(o["text-file"]));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new InputError(`text file not found: ${o["text-file"]}`);
      if (err instanceof TypeError) throw new InputError(`${o["text-file"]}: not valid UTF-8`);
      throw err;
    }
  }
  const backend = await initBackend(o.backend as BackendName);
  if (!o.json) console.error(describeBackend(backend));
  const { model, tokenizer, source } = await loadModel(o.model, o.tokenizer);
  startWork(); // model and text checked: failures from here on are not input errors (exit 1)
  const { nll, tokens, bytes } = await scoreText(model, tokenizer, text!);
  if (tokens === 0) throw new InputError("the text encodes to no tokens");
  const result = {
    model: source.model,
    backend: backend.name,
    tokens,
    bytes,
    meanNll: nll / tokens,
    perplexity: tokenPerplexity(nll, tokens),
    bytePerplexity: bytePerplexity(nll, bytes),
    bitsPerByte: bitsPerByte(nll, bytes),
    words: wordCount(text!),
    wordPerplexity: wordPerplexity(nll, wordCount(text!)),
  };
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`tokens            ${tokens}`);
    console.log(`mean NLL (nats)   ${result.meanNll.toFixed(5)}`);
    console.log(`perplexity        ${result.perplexity.toFixed(3)}`);
    console.log(`byte perplexity   ${result.bytePerplexity.toFixed(4)}`);
    console.log(`bits per byte     ${result.bitsPerByte.toFixed(4)}`);
    console.log(`word perplexity   ${result.wordPerplexity.toFixed(3)}  (${result.words} words)`);
  }
});
