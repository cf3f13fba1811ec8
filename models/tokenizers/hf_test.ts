import assert from "node:assert/strict";
import { loadHfTokenizer, parseHfTokenizer } from "./hf.ts";

/** A hand-written byte-level BPE tokenizer.json: "hello" merges to one token via h+e, l+l, he+ll, hell+o. */
const TINY = {
  version: "1.0",
  added_tokens: [
    {
      id: 9,
      content: "<s>",
      special: true,
      normalized: false,
      lstrip: false,
      rstrip: false,
      single_word: false,
    },
    {
      id: 10,
      content: "</s>",
      special: true,
      normalized: false,
      lstrip: false,
      rstrip: false,
      single_word: false,
    },
  ],
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null,
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE",
    vocab: { h: 0, e: 1, l: 2, o: 3, "\u0120": 4, he: 5, ll: 6, hell: 7, hello: 8, "<s>": 9, "</s>": 10 },
    merges: ["h e", "l l", "he ll", "hell o"],
  },
};

Deno.test("hand-written tokenizer.json: ids worked out by hand", () => {
  const tok = parseHfTokenizer(JSON.stringify(TINY));
  assert.equal(tok.vocabSize, 11);
  assert.equal(tok.bosId, 9); // conventional "<s>"
  assert.equal(tok.eosId, 10);
  assert.equal(tok.padId, null);
  // "hello hello" -> words "hello", " hello" -> [hello], [Ġ, hello]
  assert.deepEqual(tok.encode("hello hello"), [8, 4, 8]);
  assert.deepEqual(tok.encode("hello", { bos: true, eos: true }), [9, 8, 10]);
  assert.deepEqual(tok.encode("hole"), [0, 3, 2, 1]); // no merge applies: h o l e
  assert.equal(tok.decode([9, 8, 4, 8, 10]), "hello hello");
  assert.equal(tok.decode([]), "");
  assert.throws(() => tok.decode([11]), /id 11 is outside the vocabulary \(0\.\.10\)/);
});

Deno.test("tokenizer_config.json beside the file names the special tokens", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(TINY));
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({ bos_token: { content: "</s>" }, eos_token: "</s>", pad_token: "<s>" }),
    );
    const tok = await loadHfTokenizer(`${dir}/tokenizer.json`);
    assert.equal(tok.bosId, 10);
    assert.equal(tok.eosId, 10);
    assert.equal(tok.padId, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad HF tokenizer files give one clear error", async () => {
  await assert.rejects(
    loadHfTokenizer("/nonexistent/tokenizer.json"),
    /not found: \/nonexistent\/tokenizer\.json/,
  );
  assert.throws(() => parseHfTokenizer("{oops", undefined, "t.json"), /t\.json: invalid JSON/);
  assert.throws(
    () => parseHfTokenizer("{}", undefined, "t.json"),
    /t\.json: not a Hugging Face tokenizer\.json/,
  );
});
