import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBeir } from "./beir.ts";

const root = await Deno.makeTempDir({ prefix: "peft-beir-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

function beir(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  Deno.mkdirSync(join(dir, "qrels"), { recursive: true });
  const base: Record<string, string> = {
    "corpus.jsonl": '{"_id":"d1","title":"Dogs","text":"Dogs bark."}\n{"_id":"d2","text":"Cats purr."}\n',
    "queries.jsonl": '{"_id":"q1","text":"what barks"}\n{"_id":"q2","text":"what purrs"}\n',
    "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td1\t0\n",
  };
  for (const [f, t] of Object.entries({ ...base, ...files })) Deno.writeTextFileSync(join(dir, f), t);
  return dir;
}

Deno.test("beir: loads corpus, queries and graded qrels", async () => {
  const ds = await loadBeir(beir("ok", { "qrels/train.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n" }));
  assert.deepEqual(ds.corpus.test, [{ id: "d1", text: "Dogs. Dogs bark." }, {
    id: "d2",
    text: "Cats purr.",
  }]);
  assert.equal(ds.corpus.train, ds.corpus.test);
  assert.deepEqual(ds.queries.test.map((q) => q.id), ["q1", "q2"]);
  assert.deepEqual(ds.queries.train.map((q) => q.id), ["q1"]);
  assert.equal(ds.queries.dev.length, 0);
  assert.equal(ds.qrels.test.get("q2")!.get("d2"), 2);
  assert.equal(ds.qrels.test.get("q2")!.get("d1"), 0);
});

Deno.test("beir errors: unknown document/query, duplicate ids, bad header, missing test qrels", async () => {
  const head = "query-id\tcorpus-id\tscore\n";
  await assert.rejects(
    () => loadBeir(beir("e1", { "qrels/test.tsv": `${head}q1\td9\t1\n` })),
    /test\.tsv:2: unknown document "d9"/,
  );
  await assert.rejects(
    () => loadBeir(beir("e2", { "qrels/test.tsv": `${head}q1\td1\t1\nq7\td1\t1\n` })),
    /test\.tsv:3: unknown query "q7"/,
  );
  await assert.rejects(
    () => loadBeir(beir("e3", { "corpus.jsonl": '{"_id":"d1","text":"a"}\n{"_id":"d1","text":"b"}\n' })),
    /corpus\.jsonl:2: duplicate _id "d1" \(first on line 1\)/,
  );
  await assert.rejects(
    () => loadBeir(beir("e4", { "qrels/test.tsv": "q1\td1\t1\n" })),
    /test\.tsv:1: header must be/,
  );
  await assert.rejects(
    () => loadBeir(beir("e5", { "queries.jsonl": '{"_id":"q1","text":""}\n' })),
    /queries\.jsonl:1: empty "text"/,
  );
  const dir = beir("e6", {});
  Deno.removeSync(join(dir, "qrels", "test.tsv"));
  await assert.rejects(() => loadBeir(dir), /needs qrels\/test\.tsv/);
});
