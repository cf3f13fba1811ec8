import assert from "node:assert/strict";
import { parseHfTokenizer } from "../../models/tokenizers/hf.ts";
import { Llama2cTokenizer } from "../../models/tokenizers/llama2c.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import { CoverageBySplit, CoverageTally, tokenKinds } from "./coverage.ts";

/** The embedded model's byte-level BPE tokenizer. */
const defaultTokenizer = parseHfTokenizer(
  await Deno.readTextFile(new URL("../../models/default/tokenizer.json", import.meta.url)),
);

Deno.test("byte-level BPE: English has no byte-fallback tokens, Cyrillic is all byte tokens", () => {
  const kind = tokenKinds(defaultTokenizer);
  const tally = new CoverageTally(defaultTokenizer, 8);
  const en = "The cat sat on the mat.";
  tally.add(en, defaultTokenizer.encode(en, { bos: true }));
  const en1 = tally.result();
  assert.equal(en1.byteFallbackTokens, 0);
  assert.equal(en1.unknownTokens, 0);
  assert.equal(en1.words, 6);
  assert.equal(en1.chars, 23);
  assert.equal(en1.tokens, defaultTokenizer.encode(en).length); // BOS not counted
  assert.equal(en1.truncated, en1.tokens + 1 > 8 ? 1 : 0);
  // "мир": three Cyrillic letters, six UTF-8 bytes; an English vocabulary splits them into tokens
  // that hold half a letter: every token that decodes alone to U+FFFD is a byte token.
  const ru = "мир";
  const ids = defaultTokenizer.encode(ru);
  const partial = ids.filter((id) => defaultTokenizer.decode([id]).includes("\uFFFD")).length;
  assert.equal(partial, ids.length); // no token of the English vocabulary holds a whole Cyrillic letter
  assert.equal(ids.filter((id) => kind(id) === "byte").length, partial);
  tally.add(ru, defaultTokenizer.encode(ru, { bos: true }));
  const both = tally.result();
  assert.equal(both.texts, 2);
  assert.equal(both.byteFallbackTokens, partial);
  assert.ok(Math.abs(both.byteFallbackShare - partial / both.tokens) < 1e-15);
  assert.ok(Math.abs(both.tokensPerWord - both.tokens / 7) < 1e-15);
  assert.ok(Math.abs(both.tokensPerChar - both.tokens / 26) < 1e-15);
});

Deno.test("llama2.c: <0xNN> pieces are byte tokens, id 0 is unknown; a tokenizer without a cut has null truncation", () => {
  const enc = new TextEncoder();
  // <unk>, BOS, EOS, 256 byte tokens, then " " and "a".
  const pieces = [
    "<unk>",
    "<s>",
    "</s>",
    ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`),
    " ",
    "a",
  ].map((p) => enc.encode(p));
  const tok = new Llama2cTokenizer(8, new Float32Array(pieces.length), pieces);
  const kind = tokenKinds(tok);
  assert.equal(kind(0), "unknown");
  assert.equal(kind(3 + 0x62), "byte"); // "b" is not in the vocabulary: byte fallback
  assert.equal(kind(260), "text"); // "a"
  const ids = tok.encode("ab"); // " " (dummy prefix), "a", <0x62>
  assert.deepEqual(ids, [259, 260, 3 + 0x62]);
  const t = new CoverageTally(tok, null);
  t.add("ab", ids);
  const r = t.result();
  assert.deepEqual([r.tokens, r.byteFallbackTokens, r.unknownTokens, r.truncated, r.truncatedShare], [
    3,
    1,
    0,
    null,
    null,
  ]);
});

Deno.test("coverage by split: truncation counted against the task's cut, splits kept apart, reset starts over", () => {
  const chars: Tokenizer = {
    vocabSize: 300,
    bosId: 1,
    eosId: 2,
    padId: null,
    encode: (s, o = {}) => [...(o.bos ? [1] : []), ...[...s].map((c) => 3 + c.charCodeAt(0) % 200)],
    decode: (ids) => ids.map((i) => String.fromCharCode(i - 3)).join(""),
  };
  const cov = new CoverageBySplit(chars);
  for (const s of ["abc", "abcd", "ab cd ef"]) cov.split("train", 5).add(s, chars.encode(s, { bos: true }));
  cov.split("test", null).add("x", chars.encode("x"));
  let r = cov.result();
  assert.deepEqual(Object.keys(r), ["train", "test"]);
  // BOS + 3, BOS + 4 fit in 5 ids; BOS + 8 does not.
  assert.deepEqual([r.train.truncated, r.train.truncatedShare, r.train.tokens, r.train.words], [
    1,
    1 / 3,
    15,
    5,
  ]);
  cov.reset("test", null).add("yz", chars.encode("yz"));
  r = cov.result();
  assert.deepEqual([r.test.texts, r.test.tokens], [1, 2]);
});
