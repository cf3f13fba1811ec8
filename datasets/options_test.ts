import assert from "node:assert/strict";
import { join } from "node:path";
import { checkUsable, knownDatasets, loadDataset, parseDatasetOptions } from "./registry.ts";
import { dataOptionFlag } from "./options.ts";
import type { ClassificationDataset } from "./types.ts";

const dir = await Deno.makeTempDir({ prefix: "peft-dsopt-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, text);
  return path;
}

Deno.test("dataset options: strict schemas; command-line strings become typed, text stays as given", () => {
  assert.deepEqual(
    parseDatasetOptions("csv:/x.csv", { labelColumn: "007", testFraction: "0.2", dev: "d.csv" }),
    { labelColumn: "007", testFraction: 0.2, dev: "d.csv" },
  );
  assert.deepEqual(
    parseDatasetOptions("wordnet-concepts", { binary: "true", maxTestQueries: "50" }),
    { binary: true, maxTestQueries: 50 },
  );
  assert.deepEqual(parseDatasetOptions("skos:/t.ttl", { lang: "de" }), { lang: "de" });
  assert.throws(
    () => parseDatasetOptions("csv:/x.csv", { lang: "de" }),
    /^Error: dataset csv:\/x\.csv does not take option 'lang'; valid keys: dev, test, textColumn, labelColumn, idColumn, devFraction, testFraction$/,
  );
  assert.throws(() => parseDatasetOptions("sotu", { maxTest: 3 }), /^Error: dataset sotu takes no options/);
  assert.throws(
    () => parseDatasetOptions("csv:/x.csv", { testFraction: "1.5" }),
    /dataset csv:\/x\.csv: option 'testFraction': .*1/,
  );
  assert.throws(() => parseDatasetOptions("wordnet-concepts", { binary: "yes" }), /option 'binary'/);
  assert.throws(() => parseDatasetOptions("wordnet-lex", { maxTest: "0" }), /option 'maxTest'/);
  assert.throws(() => parseDatasetOptions("nope", {}), /unknown dataset "nope"/);
  assert.equal(dataOptionFlag("lang", "de"), "--data-opt lang=de");
  const csv = knownDatasets().find((d) => d.name === "csv:PATH")!;
  assert.ok(csv.options.includes("labelColumn") && csv.options.includes("textColumn"));
  assert.deepEqual(knownDatasets().find((d) => d.name === "skos:PATH")!.options.at(-1), "lang");
});

Deno.test("datasets: a single class, an empty file, a missing column and bad UTF-8 are clear errors", async () => {
  const one = write(
    "one.csv",
    ["text,label", ...Array.from({ length: 20 }, (_, i) => `t${i},pos`)].join("\n"),
  );
  // Before: this loaded, and training failed in tfjs with "depth must be >=2".
  await assert.rejects(
    () => loadDataset({ name: `csv:${one}` }),
    /^Error: dataset csv:.*one\.csv: only one class \('pos'\) in train; a classifier needs two or more: add examples of another label$/,
  );
  const empty = write("empty.csv", "");
  await assert.rejects(() => loadDataset({ name: `csv:${empty}` }), /empty\.csv:1: empty file/);
  const cols = write("cols.csv", "sentence,topic\na,x\nb,y\n");
  await assert.rejects(
    () => loadDataset({ name: `csv:${cols}` }),
    /cols\.csv:2: no column "text" \(found: sentence, topic\); rename the column to "text" or set --data-opt textColumn=COLUMN$/,
  );
  const bad = join(dir, "bad.csv");
  Deno.writeFileSync(bad, new Uint8Array([...new TextEncoder().encode("text,label\nok,p\n"), 0xff, 0x0a]));
  await assert.rejects(() => loadDataset({ name: `csv:${bad}` }), /bad\.csv:3: invalid UTF-8/);
  const rows = ["sentence,topic", ...Array.from({ length: 20 }, (_, i) => `s${i},${i % 2 ? "a" : "b"}`)];
  const renamed = write("renamed.csv", rows.join("\n"));
  const ds = await loadDataset({
    name: `csv:${renamed}`,
    ...parseDatasetOptions(`csv:${renamed}`, { textColumn: "sentence", labelColumn: "topic" }),
  }) as ClassificationDataset;
  assert.deepEqual(ds.labels, ["a", "b"]);
});

Deno.test("checkUsable: empty splits and single classes are named", () => {
  const base = { task: "classify" as const, name: "d", splitSeed: 0, dev: [] };
  const ex = (label: string) => ({ id: label, text: "t", label });
  assert.throws(
    () => checkUsable({ ...base, labels: ["a", "b"], train: [], test: [ex("a")] }),
    /no training/,
  );
  assert.throws(() => checkUsable({ ...base, labels: ["a", "b"], train: [ex("a")], test: [] }), /no test/);
  assert.throws(
    () => checkUsable({ ...base, labels: ["a"], train: [ex("a")], test: [ex("a")] }),
    /one class/,
  );
  checkUsable({ ...base, labels: ["a", "b"], train: [ex("a"), ex("b")], test: [ex("a")] });
  assert.throws(
    () => checkUsable({ task: "lm", name: "l", splitSeed: 0, train: [{ id: "1", text: "x" }], test: [] }),
    /dataset l: no test texts/,
  );
});
