import assert from "node:assert/strict";
import {
  evaluableNouns,
  wordnetConcepts,
  wordnetGlosses,
  wordnetLex,
  wordnetSplit,
} from "./wordnet_tasks.ts";
import { loadWordNet, nounByOffset } from "./wordnet.ts";

const lex = wordnetLex();
const concepts = wordnetConcepts({ withHypernym: true, neighborCredit: true });

Deno.test("fixed split: ~80/10/10 of the 82,192 noun synsets, per offset", () => {
  const counts = { train: 0, dev: 0, test: 0 };
  for (const s of loadWordNet("noun")) counts[wordnetSplit(s.offset)]++;
  assert.ok(Math.abs(counts.test / 82192 - 0.1) < 0.005, JSON.stringify(counts));
  assert.ok(Math.abs(counts.dev / 82192 - 0.1) < 0.005, JSON.stringify(counts));
});

Deno.test("wordnet-lex: 26 labels, disjoint splits, default caps, correct labels", () => {
  assert.equal(lex.labels.length, 26);
  assert.equal(lex.dev.length, 500);
  assert.equal(lex.test.length, 1000);
  const ids = [lex.train, lex.dev, lex.test].map((s) => new Set(s.map((e) => e.id)));
  for (const e of lex.test) assert.ok(!ids[0].has(e.id) && !ids[1].has(e.id));
  for (const e of lex.test) assert.equal(wordnetSplit(e.id.slice(1)), "test");
  const texts = new Set(lex.train.map((e) => e.text));
  assert.ok(lex.test.every((e) => !texts.has(e.text)), "no test gloss occurs in train");
  // Independent check of labels: the synset's lexname as read from the file.
  for (const e of lex.test.slice(0, 50)) assert.equal(e.label, nounByOffset(e.id.slice(1))!.lexname);
  const dog = [...lex.train, ...wordnetLex({ maxDev: Infinity, maxTest: Infinity }).test].find((e) =>
    e.id === "n02086723"
  );
  assert.ok(dog === undefined || dog.label === "noun.animal");
});

Deno.test("wordnet-concepts: test queries hit test concepts only; corpora disjoint; no gloss in docs", () => {
  const { corpus, queries, qrels } = concepts;
  assert.equal(queries.test.length, 300);
  assert.equal(queries.dev.length, 200);
  const testDocs = new Set(corpus.test.map((d) => d.id));
  const trainDocs = new Set(corpus.train.map((d) => d.id));
  assert.ok(corpus.test.every((d) => !trainDocs.has(d.id)));
  assert.ok(corpus.test.every((d) => wordnetSplit(d.id.slice(1)) === "test"));
  for (const q of queries.test) {
    const rel = qrels.test.get(q.id)!;
    assert.equal(rel.get(q.id), 2);
    for (const d of rel.keys()) assert.ok(testDocs.has(d));
    assert.equal(q.text, nounByOffset(q.id.slice(1))!.gloss);
  }
  const glosses = new Set(evaluableNouns().map((s) => s.gloss));
  assert.ok(corpus.test.every((d) => !glosses.has(d.text)));
});

Deno.test("wordnet-concepts: documents are lemma names (+ hypernym); neighbors graded 1; siblings as hard negatives", () => {
  const all = [...concepts.corpus.train, ...concepts.corpus.dev, ...concepts.corpus.test];
  const dog = all.find((d) => d.id === "n02086723")!;
  assert.equal(dog.text, "dog, domestic dog, Canis familiaris (canine)");
  const plain = wordnetConcepts();
  const dogPlain = [...plain.corpus.train, ...plain.corpus.dev, ...plain.corpus.test].find((d) =>
    d.id === "n02086723"
  )!;
  assert.equal(dogPlain.text, "dog, domestic dog, Canis familiaris");
  let sawNeighbor = false;
  for (const [qid, rel] of concepts.qrels.test) {
    const s = nounByOffset(qid.slice(1))!;
    const neighbors = new Set(s.pointers.filter((p) => /^[@~]i?$/.test(p.symbol)).map((p) => `n${p.offset}`));
    for (const [d, r] of rel) {
      if (d !== qid) (assert.equal(r, 1), assert.ok(neighbors.has(d)), sawNeighbor = true);
    }
    const parents = s.pointers.filter((p) => p.symbol === "@" || p.symbol === "@i").map((p) =>
      nounByOffset(p.offset)!
    );
    for (const neg of concepts.hardNegatives!.get(qid) ?? []) {
      assert.ok(
        parents.some((p) => p.pointers.some((x) => `n${x.offset}` === neg)),
        "a sibling shares a parent",
      );
      assert.equal(wordnetSplit(neg.slice(1)), "test");
    }
  }
  assert.ok(sawNeighbor);
  assert.throws(() => wordnetConcepts({ binary: true, neighborCredit: true }), /drop --data-opt binary=true/);
});

Deno.test("wordnet-glosses: train pool vs capped test split", () => {
  const g = wordnetGlosses();
  assert.equal(g.test.length, 1000);
  assert.ok(g.train.length > 60000);
  assert.ok(g.train.every((e) => wordnetSplit(e.id.slice(1)) === "train"));
  assert.ok(g.test.every((e) => wordnetSplit(e.id.slice(1)) === "test"));
});
