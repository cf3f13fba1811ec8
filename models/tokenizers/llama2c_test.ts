import assert from "node:assert/strict";
import { STORIES_SENTENCE, STORIES_SENTENCE_IDS, STORIES_TOKENIZER } from "../fixtures.ts";
import { loadLlama2cTokenizer, parseLlama2cTokenizer } from "./llama2c.ts";
import { Rng } from "../util/rng.ts";

const TOK = STORIES_TOKENIZER;

Deno.test("tok512: reference encoding from the fixture README", async () => {
  const tok = await loadLlama2cTokenizer(TOK, 512);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.maxTokenLength, 7);
  const text = STORIES_SENTENCE;
  const ids = tok.encode(text, { bos: true });
  assert.deepEqual(ids, STORIES_SENTENCE_IDS);
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(tok.encode(text, { bos: true, eos: true }).at(-1), 2);
});

Deno.test("tok512: hand-checked small cases", async () => {
  const tok = await loadLlama2cTokenizer(TOK);
  assert.deepEqual(tok.encode(""), []);
  assert.deepEqual(tok.encode("", { bos: true, eos: true }), [1, 2]);
  // Vocab dump: 259 "he" (score 0, the best), 260 " t" (-1), 265 " the" (-6): " "+t+h+e -> " "+t+"he" -> " t"+"he" -> " the".
  assert.equal(tok.tokenToId("he"), 259);
  assert.equal(tok.tokenToId(" the"), 265);
  assert.deepEqual(tok.encode("the"), [265]);
});

Deno.test("tok512: byte fallback for characters outside the vocab", async () => {
  const tok = await loadLlama2cTokenizer(TOK);
  // U+1F600 is F0 9F 98 80 in UTF-8 -> byte tokens 3 + byte.
  const ids = tok.encode("\u{1F600}", { bos: true });
  assert.deepEqual(ids, [1, tok.tokenToId(" ")!, 0xf0 + 3, 0x9f + 3, 0x98 + 3, 0x80 + 3]);
  assert.equal(tok.decode(ids), "\u{1F600}");
  const mixed = "Lily saw a \u{1F436} and said \u00e9t\u00e9!";
  assert.equal(tok.decode(tok.encode(mixed, { bos: true })), mixed);
});

Deno.test("tok512: decode keeps the leading space of a continuation (no BOS before it)", async () => {
  const tok = await loadLlama2cTokenizer(TOK);
  const ids = tok.encode("Once upon a time", { bos: true });
  // ids: BOS, " On", "ce", " upon", ...
  assert.equal(tok.decode(ids.slice(3)), " upon a time");
  assert.equal(tok.decode(ids.slice(1)), " Once upon a time");
});

Deno.test("bad llama2.c tokenizer files give one clear error", async () => {
  const good = await Deno.readFile(TOK);
  assert.throws(
    () => parseLlama2cTokenizer(good.subarray(0, 2), "t.bin"),
    /t\.bin: truncated llama2\.c tokenizer \(2 bytes/,
  );
  assert.throws(
    () => parseLlama2cTokenizer(good.subarray(0, 101), "t.bin"),
    /t\.bin: truncated llama2\.c tokenizer: token \d+/,
  );
  assert.throws(() => parseLlama2cTokenizer(good.subarray(0, good.length - 1), "t.bin"), /truncated/);
  assert.throws(
    () => parseLlama2cTokenizer(good, "t.bin", 32000),
    /512 tokens but the model expects vocab_size 32000/,
  );
  await assert.rejects(loadLlama2cTokenizer("/nonexistent/tok.bin"), /not found: \/nonexistent\/tok\.bin/);
});

Deno.test("heap merge equals a literal transliteration of llama2.c's O(n^2) loop", async () => {
  const tok = await loadLlama2cTokenizer(TOK);
  const str = (id: number) => new TextDecoder("latin1").decode(tok.pieces[id]);
  const lookup = new Map<string, number>();
  for (let i = tok.vocabSize - 1; i >= 0; i--) lookup.set(str(i), i);
  const naive = (text: string): number[] => {
    const tokens: number[] = [];
    const bytes = new TextEncoder().encode(text);
    if (bytes.length) tokens.push(lookup.get(" ")!);
    for (const ch of text) {
      const b = new TextEncoder().encode(ch);
      const id = lookup.get(new TextDecoder("latin1").decode(b));
      if (id !== undefined) tokens.push(id);
      else tokens.push(...[...b].map((x) => x + 3));
    }
    for (;;) {
      let best = -1e10, bestId = -1, bestIdx = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = lookup.get(str(tokens[i]) + str(tokens[i + 1]));
        if (id !== undefined && tok.scores[id] > best) [best, bestId, bestIdx] = [tok.scores[id], id, i];
      }
      if (bestIdx === -1) break;
      tokens.splice(bestIdx, 2, bestId);
    }
    return tokens;
  };
  const rng = new Rng(7);
  const words = [
    "the",
    "a",
    "Lily",
    "Tom",
    "happy",
    "park",
    "ball",
    "said",
    "\u00e9",
    "\u{1F600}",
    "was",
    ",",
    ".",
    "\n",
  ];
  for (let k = 0; k < 20; k++) {
    const text = Array.from({ length: 5 + rng.int(60) }, () => words[rng.int(words.length)]).join(
      rng.int(2) ? " " : "",
    );
    assert.deepEqual(tok.encode(text), naive(text), text);
  }
});
