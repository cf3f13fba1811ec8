import assert from "node:assert/strict";
import { dcg, ndcg } from "./ranking.ts";
import {
  randomExpected,
  randomExpectedGraded,
  randomExpectedNdcg,
  randomExpectedPrecision,
  randomExpectedRecall,
  randomExpectedRR,
} from "./random_ranking.ts";

/** Every permutation of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])
  );
}

Deno.test("random-ranking expectations equal the average over every permutation (brute force)", () => {
  for (const [n, r] of [[5, 1], [5, 2], [6, 3], [4, 4]]) {
    const perms = permutations(n); // documents 0..r-1 are the relevant ones
    const avg = (f: (ranking: number[]) => number) => perms.reduce((s, p) => s + f(p), 0) / perms.length;
    const rr = avg((p) => 1 / (p.findIndex((d) => d < r) + 1));
    assert.ok(Math.abs(randomExpectedRR(n, r) - rr) < 1e-12, `RR n=${n} r=${r}`);
    for (const k of [1, 2, 3, 7]) {
      const recall = avg((p) => p.slice(0, k).filter((d) => d < r).length / r);
      const prec = avg((p) => p.slice(0, k).filter((d) => d < r).length / k);
      assert.ok(Math.abs(randomExpectedRecall(n, r, k) - recall) < 1e-12, `R@${k} n=${n} r=${r}`);
      assert.ok(Math.abs(randomExpectedPrecision(n, r, k) - prec) < 1e-12, `P@${k} n=${n} r=${r}`);
    }
  }
});

Deno.test("one relevant document: E[RR] = H_N / N; names map to their measure; bad sizes throw", () => {
  const n = 1000;
  let h = 0;
  for (let i = 1; i <= n; i++) h += 1 / i;
  assert.ok(Math.abs(randomExpectedRR(n, 1) - h / n) < 1e-14);
  assert.equal(randomExpected("recall@10", 200, 1), 0.05);
  assert.equal(randomExpected("mrr", 3, 0), 0);
  assert.equal(randomExpected("ndcg@10", 200, 1), undefined);
  assert.throws(() => randomExpectedRR(3, 4), /relevant count must be an integer in \[0, 3\]/);
  assert.throws(() => randomExpectedRR(0, 0), /corpus size must be a positive integer/);
});

Deno.test("graded expectations (NDCG@k, depth-cut RR) equal the average over every permutation", () => {
  // 6 documents, grades 3, 1, 2 on d0..d2 (d3..d5 unjudged); a judged document outside the corpus
  // (grade 2) only raises the ideal DCG.
  const n = 6;
  const grades = new Map([["d0", 3], ["d1", 1], ["d2", 2]]);
  const withOutside = new Map([...grades, ["dx", 2]]);
  const perms = permutations(n).map((p) => p.map((i) => `d${i}`));
  const avg = (f: (ranking: string[]) => number) => perms.reduce((s, p) => s + f(p), 0) / perms.length;
  for (const k of [1, 3, 5, 10]) {
    const want = avg((p) => ndcg(p, grades, { k }));
    assert.ok(Math.abs(randomExpectedNdcg(n, [3, 1, 2], k) - want) < 1e-12, `ndcg@${k}`);
    assert.ok(Math.abs(randomExpectedGraded(`ndcg@${k}`, n, [3, 1, 2])! - want) < 1e-12);
    const wantOut = avg((p) => ndcg(p, withOutside, { k }));
    assert.ok(Math.abs(randomExpectedNdcg(n, [3, 1, 2], k, [3, 1, 2, 2]) - wantOut) < 1e-12);
    // A run cut at depth 2: ranks 3.. add nothing.
    const cut = avg((p) => dcg(p.slice(0, 2), grades, k) / dcg(["d0", "d2", "d1"], grades, k));
    assert.ok(Math.abs(randomExpectedNdcg(n, [3, 1, 2], k, [3, 1, 2], 2) - cut) < 1e-12, `cut ndcg@${k}`);
  }
  for (const depth of [1, 2, 4]) {
    const want = avg((p) => {
      const i = p.slice(0, depth).findIndex((d) => grades.has(d));
      return i < 0 ? 0 : 1 / (i + 1);
    });
    assert.ok(
      Math.abs(randomExpectedGraded("mrr", n, [3, 1, 2], { depth })! - want) < 1e-12,
      `depth ${depth}`,
    );
  }
  assert.equal(randomExpectedGraded("map", n, [1]), undefined);
  assert.equal(randomExpectedGraded("ndcg@3", n, [0, 0]), 0);
});
