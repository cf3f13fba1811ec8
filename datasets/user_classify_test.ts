import assert from "node:assert/strict";
import { join } from "node:path";
import { loadClassificationFiles } from "./user_classify.ts";
import { decodeUtf8, firstInvalidUtf8 } from "./text_io.ts";

const dir = await Deno.makeTempDir({ prefix: "peft-ds-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const write = (name: string, text: string | Uint8Array) => {
  const p = join(dir, name);
  if (typeof text === "string") Deno.writeTextFileSync(p, text);
  else Deno.writeFileSync(p, text);
  return p;
};

Deno.test("csv files per split load with named columns", async () => {
  const train = write("tr.csv", 'sentence,y\n"good, very",pos\nbad,neg\nfine,pos\n');
  const test = write("te.csv", "sentence,y\nawful,neg\n");
  const ds = await loadClassificationFiles("t", {
    train,
    test,
    dev: test,
    textColumn: "sentence",
    labelColumn: "y",
  })
    .catch((e) => e);
  // dev and test are the same file: duplicate ids must be refused.
  assert.match(String(ds), /duplicate id "te\.csv:2"/);
  const ok = await loadClassificationFiles("t", {
    train,
    test,
    textColumn: "sentence",
    labelColumn: "y",
    devFraction: 0,
  });
  assert.deepEqual(ok.labels, ["neg", "pos"]);
  assert.equal(ok.train[0].text, "good, very");
  assert.deepEqual(ok.test, [{ id: "te.csv:2", text: "awful", label: "neg" }]);
});

Deno.test("jsonl single file: stratified seeded split keeps rare labels in train", async () => {
  const lines = [];
  for (let i = 0; i < 40; i++) {
    lines.push(JSON.stringify({ id: `r${i}`, text: `t${i}`, label: i < 30 ? "a" : "b" }));
  }
  lines.push(JSON.stringify({ id: "rare", text: "only one", label: "c" }));
  const path = write("all.jsonl", lines.join("\n") + "\n");
  const ds = await loadClassificationFiles("j", { train: path, idColumn: "id" });
  assert.equal(ds.test.length, 3 + 1); // floor(30*0.1) + floor(10*0.1)
  assert.equal(ds.dev.length, 4);
  assert.ok(ds.train.some((e) => e.id === "rare"));
  const again = await loadClassificationFiles("j", { train: path, idColumn: "id" });
  assert.deepEqual(again.test, ds.test);
  const other = await loadClassificationFiles("j", { train: path, idColumn: "id", splitSeed: 5 });
  assert.notDeepEqual(other.test.map((e) => e.id), ds.test.map((e) => e.id));
});

Deno.test("errors: missing column, empty text, test-only label, duplicate ids, invalid UTF-8", async () => {
  const train = write("a.csv", "text,label\nx,p\ny,q\n");
  await assert.rejects(
    () => loadClassificationFiles("e", { train, test: train, labelColumn: "cls" }),
    /a\.csv:2: no column "cls" \(found: text, label\); rename the column to "cls" or set --data-opt labelColumn=COLUMN$/,
  );
  const empty = write("b.csv", "text,label\nx,p\n  ,q\n");
  await assert.rejects(() => loadClassificationFiles("e", { train: empty }), /b\.csv:3: empty "text"/);
  const test = write("c.csv", "text,label\nz,r\n");
  await assert.rejects(
    () => loadClassificationFiles("e", { train, test }),
    /c\.csv:2: label "r" appears in test but never in train/,
  );
  const dup = write("d.jsonl", '{"id":"1","text":"a","label":"p"}\n{"id":"1","text":"b","label":"p"}\n');
  await assert.rejects(
    () => loadClassificationFiles("e", { train: dup, test: train, idColumn: "id" }),
    /d\.jsonl:2: duplicate id "1" \(first at .*d\.jsonl:1\)/,
  );
  const bad = write(
    "e.csv",
    new Uint8Array([...new TextEncoder().encode("text,label\nok,p\ncaf"), 0xe9, 0x2c, 0x70, 0x0a]),
  );
  await assert.rejects(
    () => loadClassificationFiles("e", { train: bad }),
    /e\.csv:3: invalid UTF-8 \(byte 0xe9/,
  );
  const badJson = write("f.jsonl", '{"text":"a","label":"p"}\n{"text": oops}\n');
  await assert.rejects(() => loadClassificationFiles("e", { train: badJson }), /f\.jsonl:2: invalid JSON/);
});

Deno.test("UTF-8 validator agrees with the strict decoder", () => {
  const samples = [[0x61, 0xc3, 0xa9], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98, 0x80], [
    0xe2,
    0x82,
  ], [0xff]];
  for (const s of samples) {
    const bytes = new Uint8Array(s);
    let valid = true;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      valid = false;
    }
    assert.equal(firstInvalidUtf8(bytes) === -1, valid, JSON.stringify(s));
  }
  assert.equal(decodeUtf8(new TextEncoder().encode("\ufeffhé"), "x"), "hé");
});
