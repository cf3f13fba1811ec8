import assert from "node:assert/strict";
import { initBackend } from "../../models/backend.ts";
import { tinyModel } from "../../methods/tiny_test_utils.ts";
import { Rng } from "../../models/util/rng.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import type { LmDataset, RetrievalDataset } from "../../datasets/types.ts";
import { classifyTask } from "./classify.ts";
import { retrieveTask } from "./retrieve.ts";
import { lmTask } from "./lm.ts";

await initBackend("cpu");

/** Characters to ids 2..31, below the tiny model's vocabulary of 32; EOS 1, no BOS. */
const tokenizer: Tokenizer = {
  vocabSize: 32,
  bosId: null,
  eosId: 1,
  padId: 0,
  encode: (text) => [...text].map((c) => 2 + (c.charCodeAt(0) % 30)),
  decode: () => "",
};

// The corpus of scripts/bm25_reference.py: its BM25 scores order q1 "cat" as d2 > d1 > d4 and
// q2 "dog crème 42" as d5 > d2 > d4; "unicorn" matches nothing.
const docs = [
  { id: "d1", text: "The cat sat on the mat." },
  { id: "d2", text: "A dog chased the cat; the cat ran." },
  { id: "d3", text: "Dogs and cats: friends or foes?" },
  { id: "d4", text: "The Café served crème brûlée to the cat-lover." },
  { id: "d5", text: "Nothing relevant here, 42 times over." },
];
const retrieval: RetrievalDataset = {
  task: "retrieve",
  name: "tiny",
  splitSeed: 0,
  corpus: { train: docs, dev: [], test: docs },
  queries: {
    train: [{ id: "t1", text: "mat" }],
    dev: [],
    test: [{ id: "q1", text: "cat" }, { id: "q2", text: "dog crème 42" }, { id: "q3", text: "unicorn" }],
  },
  qrels: {
    train: new Map([["t1", new Map([["d1", 1]])]]),
    dev: new Map(),
    test: new Map([
      ["q1", new Map([["d2", 2], ["d1", 1]])],
      ["q2", new Map([["d5", 1]])],
      ["q3", new Map([["d3", 1]])],
    ]),
  },
};
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

Deno.test("retrieve: BM25 and the random ranking scored on the evaluated queries and corpus, by hand", async () => {
  const task = retrieveTask(tinyModel(1), tokenizer, retrieval, {
    maxLength: 16,
    pooling: "mean",
    temperature: 0.05,
  }, new Rng(0));
  const [bm25, random] = task.trivialBaselines!(null);
  assert.deepEqual([bm25.name, random.name], ["bm25", "random"]);
  // BM25 ranks: q1 d2 (grade 2) first, d1 (grade 1) second: RR 1, R@1 1/2, NDCG@3 1 (ideal order);
  // q2 d5 first: all 1; q3 nothing retrieved: all 0.
  close(bm25.metrics.mrr, 2 / 3, "bm25 mrr");
  close(bm25.metrics["recall@1"], 1.5 / 3, "bm25 recall@1");
  close(bm25.metrics["ndcg@3"], 2 / 3, "bm25 ndcg@3");
  close(bm25.metrics["recall@10"], 2 / 3, "bm25 recall@10");
  // Random over N = 5: q1 has R = 2, so E[RR] = 2/5 + (3/5)(2/4)/2 + (3/5)(2/4)(2/3)/3 + (3/5)(2/4)(1/3)/4
  // = 77/120; q2 and q3 have R = 1: H_5 / 5 = 137/300. Recall@1 = 1/5 for every query.
  close(random.metrics.mrr, (77 / 120 + 2 * 137 / 300) / 3, "random mrr");
  close(random.metrics["recall@1"], 1 / 5, "random recall@1");
  close(random.metrics["recall@10"], 1, "random recall@10");
  // NDCG@1 for q1: E[gain at rank 1] = (2 + 1)/5, ideal 2; for q2, q3: 1/5.
  close(random.metrics["ndcg@1"], (3 / 10 + 1 / 5 + 1 / 5) / 3, "random ndcg@1");
  // --max-eval 1: only q1 and its judged documents (all of the corpus stays: no --max-corpus).
  close(task.trivialBaselines!(1)[0].metrics.mrr, 1, "bm25 mrr, first query");
  assert.deepEqual(Object.keys(bm25.metrics), Object.keys((await task.evaluate("test", null)).metrics));
  const cov = task.tokenizerCoverage!();
  assert.deepEqual(Object.keys(cov).sort(), ["documents", "test queries", "train queries"]);
  assert.deepEqual([cov["train queries"].texts, cov["test queries"].texts, cov.documents.texts], [1, 3, 5]);
  // "dog crème 42" is 12 characters, 12 ids: not cut at 16; d4 (46 characters) is.
  assert.equal(cov["test queries"].truncated, 0);
  assert.equal(cov.documents.truncated, docs.filter((d) => [...d.text].length > 16).length);
  task.dispose();
});

Deno.test("lm: the add-one unigram baseline over the scored test tokens, by hand; coverage of both splits", async () => {
  const data: LmDataset = {
    task: "lm",
    name: "tiny",
    splitSeed: 0,
    train: [{ id: "a", text: "aab" }, { id: "b", text: "" }],
    test: [{ id: "x", text: "ac" }, { id: "y", text: "" }, { id: "z", text: "b b" }],
  };
  const task = lmTask(tinyModel(1), tokenizer, data, { maxLength: 2 });
  const [uni] = task.trivialBaselines!(null);
  // Train tokens a a b (N = 3, V = 32): P(a) = 3/35, P(b) = 2/35, P(c) = P(" ") = 1/35.
  // Test tokens a c | b " " b (5 tokens, 5 bytes, words 1 + 1 ("" counts one, as lm-eval) + 2 = 4).
  const nll = -Math.log(3 / 35) - Math.log(1 / 35) - 2 * Math.log(2 / 35) - Math.log(1 / 35);
  close(uni.metrics.perplexity, Math.exp(nll / 5), "perplexity");
  close(uni.metrics.bitsPerByte, nll / 5 / Math.LN2, "bits per byte");
  close(uni.metrics.wordPerplexity, Math.exp(nll / 4), "word perplexity");
  close(uni.metrics.meanNll, nll / 5, "mean NLL");
  // The evaluation's own counts agree (the same tokens, bytes and words).
  const ev = await task.evaluate("test", null);
  assert.deepEqual(ev.details, { tokens: 5, bytes: 5, words: 4, documents: 3 });
  close(task.trivialBaselines!(1)[0].metrics.perplexity, Math.sqrt(35 * 35 / 3), "first document");
  const cov = task.tokenizerCoverage!();
  assert.deepEqual([cov.train.tokens, cov.train.texts, cov.test.tokens, cov.test.texts], [3, 2, 5, 3]);
  assert.equal(cov.test.truncated, null); // LM text is windowed, never cut
  // A second evaluation counts its documents again instead of adding them up.
  await task.evaluate("test", 1);
  assert.equal(task.tokenizerCoverage!().test.tokens, 2);
  task.dispose();
});

Deno.test("classify: coverage per split from the encoding the task does, truncation at --max-length", () => {
  const ex = (id: string, text: string, label: string) => ({ id, text, label });
  const task = classifyTask(
    tinyModel(1),
    tokenizer,
    {
      task: "classify",
      name: "tiny",
      splitSeed: 0,
      labels: ["a", "b"],
      train: [ex("1", "short", "a"), ex("2", "a much longer text", "b")],
      dev: [ex("3", "dev", "a")],
      test: [ex("4", "one two three", "a"), ex("5", "x", "b")],
    },
    { maxLength: 6, pooling: "mean" },
    new Rng(0),
  );
  const cov = task.tokenizerCoverage!();
  assert.deepEqual(Object.keys(cov), ["train", "dev", "test"]);
  assert.deepEqual([cov.train.truncated, cov.train.truncatedShare, cov.train.maxLength], [1, 0.5, 6]);
  assert.deepEqual([cov.test.tokens, cov.test.words, cov.test.tokensPerWord], [14, 4, 3.5]);
  assert.equal(task.trivialBaselines, undefined); // the majority class comes from the per-item labels
  task.dispose();
});
