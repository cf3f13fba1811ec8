import assert from "node:assert/strict";
import { parseQrels, parseRun, relevanceLevel } from "./trec.ts";

Deno.test("parse qrels: qid iter docid rel, iter ignored, blank lines skipped", () => {
  const q = parseQrels("q1 0 d1 2\nq1 0 d2 0\n\n  q2\t0\td9\t1  \r\n");
  assert.deepEqual([...q.keys()], ["q1", "q2"]);
  assert.deepEqual([...q.get("q1")!], [["d1", 2], ["d2", 0]]);
  assert.deepEqual([...q.get("q2")!], [["d9", 1]]);
});

Deno.test("parse run: qid Q0 docid rank score tag, score kept, rank ignored", () => {
  const r = parseRun("q1 Q0 d1 1 9.5 tag\nq1 Q0 d2 2 -1e-3 tag\nq2 Q0 d1 7 0 tag\n");
  assert.deepEqual([...r.get("q1")!], [["d1", 9.5], ["d2", -0.001]]);
  assert.deepEqual([...r.get("q2")!], [["d1", 0]]);
});

Deno.test("qrels errors name file and line", () => {
  assert.throws(() => parseQrels("q1 0 d1 1\nq1 d2 1\n", "a.qrels"), {
    message: 'a.qrels:2: expected 4 columns "qid iter docid rel", got 3 (fix the line)',
  });
  assert.throws(
    () => parseQrels("q1 0 d1 high\n", "a.qrels"),
    /^Error: a\.qrels:1: relevance "high" is not a number/,
  );
  assert.throws(() => parseQrels("q1 0 d1 0x1\n"), /qrels:1: relevance "0x1" is not a number/);
  assert.throws(
    () => parseQrels("q1 0 d1 1\nq2 0 d1 1\n\nq1 0 d1 0\n", "a.qrels"),
    /a\.qrels:4: duplicate document "d1" for query "q1" \(first on line 1\)/,
  );
});

Deno.test("run errors name file and line", () => {
  assert.throws(
    () => parseRun("q1 Q0 d1 1 0.5\n", "r.txt"),
    /r\.txt:1: expected at least 6 columns .* got 5/,
  );
  assert.throws(
    () => parseRun("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 NaN t\n", "r.txt"),
    /r\.txt:2: score "NaN" is not a number/,
  );
  assert.throws(
    () => parseRun("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", "r.txt"),
    /r\.txt:2: duplicate document "d1"/,
  );
});

Deno.test("qrels relevance is an integer, truncated like C's atol (trec_eval get_qrels.c)", () => {
  const q = parseQrels("q1 0 a 2.7\nq1 0 b 0.5\nq1 0 c -1\nq1 0 d -1.5\nq1 0 e .5\nq1 0 f 1e3\nq1 0 g +3\n");
  assert.deepEqual([...q.get("q1")!], [["a", 2], ["b", 0], ["c", -1], ["d", -1], ["e", 0], ["f", 1], [
    "g",
    3,
  ]]);
  assert.ok(Object.is(relevanceLevel("-0.9"), 0), 'atol("-0.9") is 0, not -0');
  // Not numbers: trec_eval's atol would read 0 silently; here the line is named instead.
  assert.throws(() => relevanceLevel("2x", "a.qrels:3"), /a\.qrels:3: relevance "2x" is not a number/);
});

Deno.test("qrels: lines starting with # are comments (trec_eval's own test files have them)", () => {
  const q = parseQrels("# judged by x\nq1 0 d1 1\n  # indented comment\n#q2 0 d1 1\nq2 0 d2 1\n");
  assert.deepEqual([...q.keys()], ["q1", "q2"]);
  assert.deepEqual([...q.get("q2")!], [["d2", 1]]);
  assert.throws(() => parseQrels("# c\nq1 0 d1\n", "a.qrels"), /a\.qrels:2: expected 4 columns/);
});

Deno.test("run: columns after the sixth are ignored, as trec_eval does", () => {
  const r = parseRun("q1 Q0 d1 1 9.5 tag extra 7\nq1 Q0 d2 2 3 tag\n");
  assert.deepEqual([...r.get("q1")!], [["d1", 9.5], ["d2", 3]]);
});
