import assert from "node:assert/strict";
import { parseQrels, parseRun } from "./trec.ts";

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
  assert.throws(() => parseRun("q1 Q0 d1 1 0.5\n", "r.txt"), /r\.txt:1: expected 6 columns .* got 5/);
  assert.throws(
    () => parseRun("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 NaN t\n", "r.txt"),
    /r\.txt:2: score "NaN" is not a number/,
  );
  assert.throws(
    () => parseRun("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", "r.txt"),
    /r\.txt:2: duplicate document "d1"/,
  );
});
