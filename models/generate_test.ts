import assert from "node:assert/strict";
import { initBackend } from "./backend.ts";
import { validateConfig } from "./config.ts";
import { capToContext, DecodeStream, generate } from "./generate.ts";
import { LlamaModel } from "./llama.ts";
import { Rng } from "./util/rng.ts";
import { loadLlama2cTokenizer } from "./tokenizers/llama2c.ts";
import { STORIES_TOKENIZER } from "./fixtures.ts";

Deno.test("capToContext: the request, or the room the context leaves; a prompt that fills it is an error", () => {
  assert.deepEqual(capToContext(512, 5, 64), { maxNewTokens: 64, capped: false });
  assert.deepEqual(capToContext(512, 5, 507), { maxNewTokens: 507, capped: false });
  assert.deepEqual(capToContext(512, 5, 100000), { maxNewTokens: 507, capped: true });
  assert.throws(
    () => capToContext(512, 512, 1),
    /the prompt is 512 tokens and the model's context 512: no room/,
  );
});

Deno.test("DecodeStream: pieces add up to the whole decode, never printing half a character", async () => {
  const tok = await loadLlama2cTokenizer(STORIES_TOKENIZER);
  const text = "Once upon a time, Lily saw a ☃ and said: «héllo, wörld» 日本";
  const ids = tok.encode(text, { bos: false });
  assert.ok(ids.length > 10);
  const stream = new DecodeStream((x) => tok.decode(x));
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(""), tok.decode(ids));
  assert.ok(pieces.every((p) => !p.includes("\uFFFD")), JSON.stringify(pieces));
  assert.ok(pieces.filter((p) => p !== "").length > 5, "text comes out as it is generated, not at the end");
  // A multi-byte character split over byte tokens is held back until complete.
  const bytes = new TextEncoder().encode("☃");
  const byteDecode = (x: number[]) => new TextDecoder().decode(new Uint8Array(x));
  const s = new DecodeStream(byteDecode);
  assert.deepEqual([...bytes].map((b) => s.push(b)), ["", "", "☃"]);
  assert.equal(s.flush(), "");
  // A truly invalid byte is printed (as U+FFFD) at the end.
  const bad = new DecodeStream(byteDecode);
  assert.equal(bad.push(0x41) + bad.push(0xff), "A");
  assert.equal(bad.flush(), "\uFFFD");
});

Deno.test("generate: each token goes to onToken as it is chosen, in order", async () => {
  await initBackend("cpu");
  const config = validateConfig({
    dim: 16,
    hiddenDim: 24,
    nLayers: 1,
    nHeads: 2,
    vocabSize: 20,
    maxSeqLen: 16,
  });
  const model = LlamaModel.random(config, new Rng(4), 0.5);
  const seen: number[] = [];
  let resolved = false;
  const out = await generate(model, [1, 2, 3], {
    maxNewTokens: 6,
    onToken: async (id) => {
      assert.ok(!resolved);
      await Promise.resolve();
      seen.push(id);
    },
  }).finally(() => (resolved = true));
  assert.equal(out.length, 6);
  assert.deepEqual(seen, out);
  model.dispose();
});
