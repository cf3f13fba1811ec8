import assert from "node:assert/strict";
import { InputError, UsageError } from "../models/util/args.ts";
import { generateCommand, type GenerateOutput } from "./generate.ts";
import { loadLlama2cTokenizer } from "../models/tokenizers/llama2c.ts";
import { STORIES_CONTINUATION, STORIES_MODEL, STORIES_TOKENIZER } from "../models/fixtures.ts";

const CONTEXT = 24;

/** stories260K with its context cut to 24 tokens (header seq_len; the longer RoPE tables are ignored). */
async function shortContextModel(dir: string): Promise<string> {
  const bytes = await Deno.readFile(STORIES_MODEL);
  new DataView(bytes.buffer).setInt32(24, CONTEXT, true);
  await Deno.writeFile(`${dir}/m.bin`, bytes);
  await Deno.copyFile(STORIES_TOKENIZER, `${dir}/tok512.bin`);
  return `${dir}/m.bin`;
}

function collect(): GenerateOutput & { pieces: string[]; notices: string[] } {
  const pieces: string[] = [], notices: string[] = [];
  return {
    pieces,
    notices,
    text: (p) => Promise.resolve(void pieces.push(p)),
    notice: (l) => void notices.push(l),
  };
}

Deno.test("generate: --max-tokens beyond the context is capped with a notice, and text streams token by token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = await shortContextModel(dir);
    const prompt = "Once upon a time";
    const promptTokens = (await loadLlama2cTokenizer(STORIES_TOKENIZER)).encode(prompt, { bos: true }).length;
    const out = collect();
    await generateCommand([
      "--model",
      model,
      "--prompt",
      prompt,
      "--max-tokens",
      "100000",
      "--backend",
      "cpu",
    ], out);
    const room = CONTEXT - promptTokens;
    assert.deepEqual(out.notices.slice(1), [
      `generate: --max-tokens 100000 capped at ${room}: the model's context is ${CONTEXT} tokens and the prompt uses ${promptTokens}`,
    ]);
    // The prompt first, then pieces as they are decoded (not one write at the end), then a newline.
    assert.equal(out.pieces[0], prompt);
    assert.ok(out.pieces.length >= room / 2, `${out.pieces.length} writes`);
    assert.equal(out.pieces.at(-1)!.at(-1), "\n");
    const text = out.pieces.join("").trimEnd();
    assert.ok(text.length > prompt.length + 40, text);
    assert.ok((prompt + STORIES_CONTINUATION).startsWith(text), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("generate: a prompt that fills the context, and bad flags, fail before any generation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = await shortContextModel(dir);
    const out = collect();
    await assert.rejects(
      generateCommand(
        ["--model", model, "--prompt", "Once upon a time ".repeat(10), "--backend", "cpu"],
        out,
      ),
      (err) =>
        err instanceof InputError &&
        /--prompt: the prompt is \d+ tokens and the model's context 24/.test(err.message),
    );
    assert.deepEqual(out.pieces, []);
    await assert.rejects(generateCommand(["--max-tokens", "0", "--prompt", "x"], out), UsageError);
    await generateCommand(["--help"], out);
    assert.match(out.pieces[0], /^usage: deno task generate/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
