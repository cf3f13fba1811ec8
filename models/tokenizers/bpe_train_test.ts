import assert from "node:assert/strict";
import {
  bpeTokenizerJson,
  bytesToUnicode,
  GPT2_SPLIT,
  trainBpe,
  trainBpeTokenizerJson,
} from "./bpe_train.ts";
import { parseHfTokenizer } from "./hf.ts";
import { Rng } from "../util/rng.ts";

const SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>"];

/** A small corpus with a clearly most frequent word. */
function corpus(): string {
  const rng = new Rng(11);
  const words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "to", "park", "happy", "little"];
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const n = 4 + rng.int(8);
    lines.push(Array.from({ length: n }, () => words[rng.int(words.length)]).join(" ") + " banana.");
  }
  return lines.join("\n");
}

Deno.test("bytesToUnicode matches GPT-2's published table", () => {
  const t = bytesToUnicode();
  assert.equal(t[0x20], "\u0120"); // 'Ġ'
  assert.equal(t[0x0a], "\u010a"); // 'Ċ'
  assert.equal(t[0x00], "\u0100"); // 'Ā'
  assert.equal(t[0x7f], "\u0121"); // 'ġ'
  assert.equal(t[0xad], "\u0143"); // 'Ń' (soft hyphen)
  assert.equal(t[0x21], "!");
  assert.equal(t[0xe9], "\u00e9");
  assert.equal(new Set(t).size, 256);
});

Deno.test("hand-computed merges on 'ab ab ab ac'", () => {
  // Words: "ab" x1, " ab" x2, " ac" x1. Pairs (a,b)=3, (Ġ,a)=3, (a,c)=1: tie -> "a" < "Ġ" -> (a,b).
  // Then (Ġ,ab)=2; then (Ġ,a)=1 vs (a,c)=1 -> (a,c); then (Ġ,ac)=1.
  const m = trainBpe("ab ab ab ac", { vocabSize: 3 + 256 + 4, minFrequency: 1 });
  assert.deepEqual(m.merges, [["a", "b"], ["\u0120", "ab"], ["a", "c"], ["\u0120", "ac"]]);
  assert.deepEqual(m.vocab.slice(0, 3), SPECIALS);
  assert.equal(m.vocab[3 + 0x61], "a");
  assert.deepEqual(m.vocab.slice(259), ["ab", "\u0120ab", "ac", "\u0120ac"]);
  // minFrequency 2 (default) stops after the two pairs seen at least twice.
  assert.deepEqual(trainBpe("ab ab ab ac", { vocabSize: 1000 }).merges, [["a", "b"], ["\u0120", "ab"]]);
});

/** Textbook BPE (Sennrich et al. 2016): recount every pair from scratch before each merge. */
function naiveMerges(text: string, nMerges: number, minFrequency: number): [string, string][] {
  const b2u = bytesToUnicode();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  const words = [...counts].map(([w, c]) => ({
    syms: [...new TextEncoder().encode(w)].map((b) => b2u[b]),
    c,
  }));
  const merges: [string, string][] = [];
  while (merges.length < nMerges) {
    const pc = new Map<string, { a: string; b: string; c: number }>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const k = JSON.stringify([w.syms[i], w.syms[i + 1]]);
        const e = pc.get(k) ?? { a: w.syms[i], b: w.syms[i + 1], c: 0 };
        e.c += w.c;
        pc.set(k, e);
      }
    }
    let best: { a: string; b: string; c: number } | null = null;
    for (const e of pc.values()) {
      if (
        !best || e.c > best.c || (e.c === best.c && (e.a < best.a || (e.a === best.a && e.b < best.b)))
      ) best = e;
    }
    if (!best || best.c < minFrequency) break;
    merges.push([best.a, best.b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length;) {
        if (i + 1 < w.syms.length && w.syms[i] === best.a && w.syms[i + 1] === best.b) {
          out.push(best.a + best.b);
          i += 2;
        } else out.push(w.syms[i++]);
      }
      w.syms = out;
    }
  }
  return merges;
}

Deno.test("incremental trainer gives the same merges as textbook BPE", () => {
  // Random words over a small alphabet (with multi-byte characters), drawn with a skewed distribution.
  const rng = new Rng(5);
  const letters = [..."abcdefgh\u00e9\u4f60\u{1F600}"];
  const lexicon = Array.from({ length: 300 }, () => {
    const n = 2 + rng.int(8);
    return Array.from({ length: n }, () => letters[rng.int(letters.length)]).join("");
  });
  const words = Array.from({ length: 4000 }, () => lexicon[rng.int(1 + rng.int(lexicon.length))]);
  const text = corpus() + " aaaa aaa aa " + words.join(" ") + ", 1234 12 34!";
  const m = trainBpe(text, { vocabSize: 259 + 400, minFrequency: 2 });
  assert.equal(m.merges.length, 400);
  assert.deepEqual(m.merges, naiveMerges(text, 400, 2));
});

Deno.test("trained tokenizer.json loads through hf.ts and round-trips arbitrary text", () => {
  const json = trainBpeTokenizerJson(corpus(), { vocabSize: 400 });
  const tok = parseHfTokenizer(json, undefined, "trained");
  assert.equal(tok.bosId, 0);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 2);
  assert.ok(tok.vocabSize <= 400 && tok.vocabSize > 259);
  // Every corpus line ends in " banana.", so " banana" must be one token.
  const banana = tok.encode(" banana");
  assert.equal(banana.length, 1);
  assert.equal(tok.inner.id_to_token(banana[0]), "\u0120banana");
  for (
    const text of [
      "the cat sat on the mat",
      "  leading spaces, tabs\tand\nnewlines\n\n",
      "Unicode: \u00e9t\u00e9, \u4f60\u597d, \u{1F600}\u{1F436}, \u00df, caf\u00e9 ; it's we'll",
      "numbers 12345 and symbols <|> {}[]",
    ]
  ) {
    const ids = tok.encode(text, { bos: true, eos: true });
    assert.equal(ids[0], 0);
    assert.equal(ids.at(-1), 1);
    assert.equal(tok.decode(ids), text);
  }
});

Deno.test("training is deterministic", () => {
  const a = trainBpeTokenizerJson(corpus(), { vocabSize: 350 });
  const b = trainBpeTokenizerJson(corpus(), { vocabSize: 350 });
  assert.equal(a, b);
  assert.equal(bpeTokenizerJson(trainBpe([corpus()], { vocabSize: 350 })), a);
});

Deno.test("trainer rejects a vocab size below specials + 256 bytes", () => {
  assert.throws(() => trainBpe("abc", { vocabSize: 100 }), /vocabSize 100 must be an integer in \[259,/);
});
