import assert from "node:assert/strict";
import {
  averagePrecision,
  checkRunQueriesJudged,
  compareCodePoints,
  evaluate,
  fromRecords,
  ndcg,
  precisionAt,
  queriesToAverage,
  rankDocuments,
  recallAt,
  reciprocalRank,
} from "./ranking.ts";

function close(actual: number, expected: number, tol = 1e-7): void {
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);
}

// The example of the ranx README (github.com/AmenRa/ranx, "Create Qrels and Run").
const qrels = fromRecords({ q_1: { d_12: 5, d_25: 3 }, q_2: { d_11: 6, d_22: 1 } });
const run = fromRecords({
  q_1: { d_12: 0.9, d_23: 0.8, d_25: 0.7, d_36: 0.6, d_32: 0.5, d_35: 0.4 },
  q_2: { d_12: 0.9, d_11: 0.8, d_25: 0.7, d_36: 0.6, d_22: 0.5, d_35: 0.4 },
});

Deno.test("ranx README example: published ndcg@5 0.7861 and mrr 0.75, map@5 0.6416", () => {
  close(evaluate(qrels, run, (r, j) => ndcg(r, j, { k: 5 })).mean, 0.7861261);
  close(evaluate(qrels, run, reciprocalRank).mean, 0.75);
  // The README prints map@5 truncated to 4 decimals, so the value lies in [0.6416, 0.6417).
  const map5 = evaluate(qrels, run, (r, j) => averagePrecision(r, j, 5)).mean;
  assert.ok(map5 >= 0.6416 && map5 < 0.6417, `map@5 ${map5}`);
});

Deno.test("ranx README example: ndcg_burges@5, ndcg@3, mrr@1, recall@1", () => {
  close(evaluate(qrels, run, (r, j) => ndcg(r, j, { k: 5, gain: "burges" })).mean, 0.8024377);
  close(evaluate(qrels, run, (r, j) => ndcg(r, j, { k: 3 })).mean, 0.7569558);
  close(evaluate(qrels, run, (r, j) => reciprocalRank(r, j, 1)).mean, 0.5);
  close(evaluate(qrels, run, (r, j) => recallAt(r, j, 1)).mean, 0.25);
});

Deno.test("per-query values of the ranx example, computed by hand", () => {
  // q_2 ranks d_12 d_11 d_25 d_36 d_22 d_35: relevant d_11 (6) at 2, d_22 (1) at 5.
  const e = evaluate(qrels, run, (r, j) => ndcg(r, j, { k: 5 }));
  const q2 = (6 / Math.log2(3) + 1 / Math.log2(6)) / (6 + 1 / Math.log2(3));
  close(e.perQuery.get("q_2")!, q2, 1e-12);
  // AP(q_2) over the full ranking = (1/2 + 2/5) / 2; P@5 = 2/5.
  close(evaluate(qrels, run, averagePrecision).perQuery.get("q_2")!, 0.45, 1e-12);
  close(evaluate(qrels, run, (r, j) => precisionAt(r, j, 5)).perQuery.get("q_2")!, 0.4, 1e-12);
});

Deno.test("ties are broken by document id descending (trec_eval comp_sim_docno)", () => {
  const scores = new Map([["a", 1], ["c", 1], ["b", 2], ["b2", 1]]);
  assert.deepEqual(rankDocuments(scores), ["b", "c", "b2", "a"]);
  // With tied scores, relevant "a" ranks after "c": RR = 1/2, not 1.
  assert.equal(reciprocalRank(rankDocuments(new Map([["a", 0.5], ["c", 0.5]])), new Map([["a", 1]])), 0.5);
});

Deno.test("docid order is UTF-8 byte order, as strcmp", () => {
  // U+FF5E (bytes EF BD 9E) sorts before U+1F600 (F0 ...) in UTF-8, though not in UTF-16 units.
  assert.ok(compareCodePoints("\uFF5E", "\u{1F600}") < 0);
  assert.ok(compareCodePoints("ab", "abc") < 0);
  assert.equal(compareCodePoints("x", "x"), 0);
});

Deno.test("edge cases: nothing relevant retrieved gives 0; P@k divides by k", () => {
  const j = new Map([["z", 2], ["y", 0]]);
  const ranked = ["a", "y", "b"];
  assert.equal(reciprocalRank(ranked, j), 0);
  assert.equal(averagePrecision(ranked, j), 0);
  assert.equal(ndcg(ranked, j), 0);
  assert.equal(recallAt(ranked, j, 3), 0);
  // Two docs retrieved, one relevant: P@10 = 1/10 (trec_eval fills with non-relevant).
  assert.equal(precisionAt(["z", "a"], j, 10), 0.1);
  // No relevant judgments at all: every measure is 0, never NaN.
  const none = new Map([["a", 0]]);
  assert.equal(ndcg(["a"], none), 0);
  assert.equal(recallAt(["a"], none, 1), 0);
  assert.equal(averagePrecision(["a"], none), 0);
});

Deno.test("AP and full NDCG on a hand-computed ranking", () => {
  // Relevant at ranks 1 and 3 of 4, R = 3 (one relevant never retrieved).
  const j = new Map([["a", 1], ["c", 2], ["x", 1]]);
  const ranked = ["a", "b", "c", "d"];
  close(averagePrecision(ranked, j), (1 + 2 / 3) / 3, 1e-15);
  const dcgv = 1 + 2 / 2; // log2(2)=1, log2(4)=2
  const idcg = 2 + 1 / Math.log2(3) + 1 / 2;
  close(ndcg(ranked, j), dcgv / idcg, 1e-15);
});

Deno.test("averaging set: run ∩ qrels by default, or only queries with a relevant doc", () => {
  const q = fromRecords({ a: { d1: 1 }, b: { d1: 0 }, c: { d9: 1 } });
  const r = fromRecords({ a: { d1: 1 }, b: { d1: 1 }, z: { d1: 1 } });
  assert.deepEqual(queriesToAverage(q, r), ["a", "b"]);
  assert.deepEqual(queriesToAverage(q, r, "with_relevant"), ["a"]);
  assert.equal(evaluate(q, r, reciprocalRank).mean, 0.5);
  assert.equal(evaluate(q, r, reciprocalRank, "with_relevant").mean, 1);
  assert.throws(() => evaluate(q, fromRecords({ z: { d: 1 } }), reciprocalRank), /no run query appears/);
});

Deno.test("trec_eval -c: every qrels query averaged, one missing from the run scores 0", () => {
  const q = fromRecords({ a: { d1: 1 }, b: { d1: 0 }, c: { d9: 1 } });
  const r = fromRecords({ a: { d1: 1 }, b: { d1: 1 } });
  assert.deepEqual(queriesToAverage(q, r, "complete"), ["a", "b", "c"]);
  const e = evaluate(q, r, reciprocalRank, "complete");
  assert.deepEqual([...e.perQuery], [["a", 1], ["b", 0], ["c", 0]]);
  assert.equal(e.mean, 1 / 3);
  assert.throws(() => evaluate(new Map(), new Map(), reciprocalRank, "complete"), /qrels have no query/);
});

Deno.test("checkRunQueriesJudged: a run query the qrels lack is an error naming it (trec_eval 10)", () => {
  const q = fromRecords({ a: { d1: 1 } });
  checkRunQueriesJudged(q, fromRecords({ a: { d1: 1 } }));
  assert.throws(
    () => checkRunQueriesJudged(q, fromRecords({ a: { d1: 1 }, z: { d1: 1 } })),
    /run query "z" not in the qrels \(trec_eval 10 stops here too\)/,
  );
  const many = fromRecords(
    Object.fromEntries(["z1", "z2", "z3", "z4", "z5", "z6", "z7"].map((k) => [k, {}])),
  );
  assert.throws(
    () => checkRunQueriesJudged(q, many),
    /run queries "z1", "z2", "z3", "z4", "z5" and 2 more not in the qrels/,
  );
});

Deno.test("bad input: non-finite score and bad cutoff throw", () => {
  assert.throws(() => rankDocuments(new Map([["a", NaN]])), /finite/);
  assert.throws(() => precisionAt(["a"], new Map(), 0), /positive integer/);
});
