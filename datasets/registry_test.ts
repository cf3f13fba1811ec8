import assert from "node:assert/strict";
import { join } from "node:path";
import { datasetTask, knownDatasets, loadDataset } from "./registry.ts";
import type { ClassificationDataset, LmDataset, RetrievalDataset } from "./types.ts";

Deno.test("registry: tasks by name, unknown names list the known ones", () => {
  assert.equal(datasetTask("wordnet-lex"), "classify");
  assert.equal(datasetTask("wordnet-concepts"), "retrieve");
  assert.equal(datasetTask("wordnet-glosses"), "lm");
  assert.equal(datasetTask("sotu"), "lm");
  assert.equal(datasetTask("csv:/x.csv"), "classify");
  assert.equal(datasetTask("beir:/d"), "retrieve");
  assert.equal(datasetTask("skos:/t.ttl"), "retrieve");
  assert.equal(datasetTask("text:/t.txt"), "lm");
  assert.throws(
    () => datasetTask("wordnet-verbs"),
    /unknown dataset "wordnet-verbs"; known: wordnet-lex, .*beir:DIR/,
  );
  assert.throws(() => datasetTask("csv:"), /unknown dataset/);
  assert.equal(knownDatasets().length, 10);
});

Deno.test("registry: trainSize is nested and leaves dev/test unchanged", async () => {
  const small = (await loadDataset({ name: "wordnet-lex", trainSize: 300 })) as ClassificationDataset;
  const big = (await loadDataset({ name: "wordnet-lex", trainSize: 1500 })) as ClassificationDataset;
  const full = (await loadDataset({ name: "wordnet-lex" })) as ClassificationDataset;
  assert.equal(small.train.length, 300);
  const bigIds = new Set(big.train.map((e) => e.id));
  assert.ok(small.train.every((e) => bigIds.has(e.id)));
  assert.deepEqual(small.test, big.test);
  assert.deepEqual(small.test, full.test);
  assert.deepEqual(small.dev, full.dev);
  const again = (await loadDataset({ name: "wordnet-lex", trainSize: 300 })) as ClassificationDataset;
  assert.deepEqual(again.train, small.train);
  const other =
    (await loadDataset({ name: "wordnet-lex", trainSize: 300, splitSeed: 1 })) as ClassificationDataset;
  assert.notDeepEqual(other.train.map((e) => e.id), small.train.map((e) => e.id));
  assert.deepEqual(other.test, full.test); // test caps use a fixed seed
  await assert.rejects(
    () => loadDataset({ name: "wordnet-lex", trainSize: 10 ** 6 }),
    new RegExp(`only ${full.train.length} examples`),
  );
  const perClass = (await loadDataset({ name: "wordnet-lex", trainPerClass: 5 })) as ClassificationDataset;
  assert.equal(perClass.train.length, 5 * 26);
});

Deno.test("registry: retrieve and lm subsets; option checks", async () => {
  const r = (await loadDataset({ name: "wordnet-concepts", trainSize: 100 })) as RetrievalDataset;
  assert.equal(r.queries.train.length, 100);
  assert.equal(r.qrels.train.size, 100);
  assert.ok(
    [...r.hardNegatives!.keys()].every((q) =>
      r.qrels.train.has(q) || r.qrels.test.has(q) || r.qrels.dev.has(q)
    ),
  );
  assert.equal(r.queries.test.length, 300);
  const lm = (await loadDataset({ name: "sotu", trainSize: 10 })) as LmDataset;
  assert.equal(lm.train.length, 10);
  await assert.rejects(() => loadDataset({ name: "sotu", trainPerClass: 2 }), /trainPerClass needs labels/);
  await assert.rejects(
    () => loadDataset({ name: "wordnet-lex", maxTset: 5 }),
    /dataset wordnet-lex does not take option 'maxTset'; valid keys: maxDev, maxTest$/,
  );
});

Deno.test("registry: user files by prefix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peft-reg-" });
  try {
    const rows = ["text,label", ...Array.from({ length: 30 }, (_, i) => `t${i},${i % 2 ? "odd" : "even"}`)];
    const csv = join(dir, "d.csv");
    Deno.writeTextFileSync(csv, rows.join("\n"));
    const ds = (await loadDataset({ name: `csv:${csv}`, testFraction: 0.2 })) as ClassificationDataset;
    assert.equal(ds.task, "classify");
    assert.equal(ds.test.length, 6);
    assert.deepEqual(ds.labels, ["even", "odd"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
