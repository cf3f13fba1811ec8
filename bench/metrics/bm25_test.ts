import assert from "node:assert/strict";
import { BM25_DEFAULTS, bm25Idf, Bm25Index, bm25Tokens } from "./bm25.ts";

// The tiny corpus and queries of scripts/bm25_reference.py (an independent plain-Python BM25), whose
// printed scores are pasted below: `python3 scripts/bm25_reference.py`.
const DOCS = [
  { id: "d1", text: "The cat sat on the mat." },
  { id: "d2", text: "A dog chased the cat; the cat ran." },
  { id: "d3", text: "Dogs and cats: friends or foes?" },
  { id: "d4", text: "The Café served crème brûlée to the cat-lover." },
  { id: "d5", text: "Nothing relevant here, 42 times over." },
];
const REFERENCE: Record<string, number[]> = {
  "cat": [0.5539917665954204, 0.6939645169162381, 0, 0.5113162239475563, 0],
  "the cat cat": [1.8270059464049568, 2.081893550748714, 0, 1.7047117494883324, 0],
  "dog crème 42": [0, 1.349759517049381, 0, 1.3151009274532486, 1.4248620558651117],
  "unicorn": [0, 0, 0, 0, 0],
};

Deno.test("BM25 scores equal the independent Python reference (k1 0.9, b 0.4, Lucene idf)", () => {
  assert.deepEqual(BM25_DEFAULTS, { k1: 0.9, b: 0.4 });
  const index = new Bm25Index(DOCS);
  for (const [q, want] of Object.entries(REFERENCE)) {
    const got = index.scores(q);
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-12, `${q} ${DOCS[i].id}: ${got[i]} vs ${w}`));
  }
  // Only documents sharing a term are retrieved, as a Lucene search returns them.
  assert.deepEqual([...index.matches("dog crème 42").keys()], ["d2", "d4", "d5"]);
  assert.equal(index.matches("unicorn").size, 0);
});

Deno.test("BM25 tokens: lowercase, letters and digits only; idf closed form; bad parameters throw", () => {
  assert.deepEqual(bm25Tokens("The Café's cat-lover, 42x!"), ["the", "café", "s", "cat", "lover", "42x"]);
  assert.deepEqual(bm25Tokens("Мама мыла раму"), ["мама", "мыла", "раму"]);
  // A term in every one of 5 documents: ln(1 + 0.5/5.5) > 0 (Lucene's form never goes negative).
  assert.ok(Math.abs(bm25Idf(5, 5) - Math.log(1 + 0.5 / 5.5)) < 1e-15);
  assert.ok(Math.abs(bm25Idf(5, 1) - Math.log(1 + 4.5 / 1.5)) < 1e-15);
  // b = 0: no length normalisation, so a term's weight depends only on tf: idf * tf(k1+1)/(tf+k1).
  const flat = new Bm25Index([{ id: "a", text: "x" }, { id: "b", text: "x y y y y y y" }], { k1: 1.2, b: 0 });
  const s = flat.scores("x");
  assert.ok(Math.abs(s[0] - s[1]) < 1e-15 && Math.abs(s[0] - bm25Idf(2, 2)) < 1e-15);
  assert.throws(() => new Bm25Index([], { k1: 0.9, b: 1.5 }), /b in \[0, 1\]/);
});
