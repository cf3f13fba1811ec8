import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTextLm, paragraphs } from "./text_lm.ts";

const dir = await Deno.makeTempDir({ prefix: "peft-text-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test("text file: paragraphs with start lines", () => {
  const docs = paragraphs("one\ntwo\n\n\nthree\r\n\r\nfour\n", "/x/a.txt");
  assert.deepEqual(docs, [
    { id: "a.txt:1", text: "one\ntwo" },
    { id: "a.txt:5", text: "three" },
    { id: "a.txt:7", text: "four" },
  ]);
});

Deno.test("text folder: one document per .txt, seeded ~10% test", async () => {
  const folder = join(dir, "docs");
  Deno.mkdirSync(folder);
  for (let i = 0; i < 20; i++) Deno.writeTextFileSync(join(folder, `d${i}.txt`), `document ${i}\n`);
  Deno.writeTextFileSync(join(folder, "skip.md"), "not text");
  const ds = await loadTextLm(folder);
  assert.equal(ds.test.length, 2);
  assert.equal(ds.train.length, 18);
  assert.ok(ds.test.every((d) => !ds.train.some((t) => t.id === d.id)));
  assert.deepEqual((await loadTextLm(folder)).test, ds.test);
});

Deno.test("text errors: one document, invalid UTF-8, empty file", async () => {
  const one = join(dir, "one.txt");
  Deno.writeTextFileSync(one, "just one paragraph\n");
  await assert.rejects(() => loadTextLm(one), /1 document\(s\), need 2\+/);
  const bad = join(dir, "bad.txt");
  Deno.writeFileSync(bad, new Uint8Array([0x61, 0x0a, 0x0a, 0x62, 0x0a, 0xff]));
  await assert.rejects(() => loadTextLm(bad), /bad\.txt:4: invalid UTF-8/);
  const f = join(dir, "f");
  Deno.mkdirSync(f);
  Deno.writeTextFileSync(join(f, "a.txt"), "x");
  Deno.writeTextFileSync(join(f, "b.txt"), "  \n");
  await assert.rejects(() => loadTextLm(f), /b\.txt:1: empty text file/);
});
