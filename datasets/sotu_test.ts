import assert from "node:assert/strict";
import { sotu, sotuSpeeches } from "./sotu.ts";

Deno.test("sotu: all 233 speeches, ids unique, whole texts", () => {
  const all = sotuSpeeches();
  assert.equal(all.length, 233); // the package ships 233 speeches (1790-2021)
  assert.equal(new Set(all.map((s) => s.id)).size, 233);
  const first = all.find((s) => s.id === "1790_George_Washington")!;
  assert.ok(first.text.startsWith("Fellow-Citizens of the Senate and House of Representatives"));
  assert.ok(all.some((s) => s.id === "2021_Joseph_R_Biden"));
});

Deno.test("sotu: ~10% test by speech, disjoint, fixed", () => {
  const d = sotu();
  assert.equal(d.train.length + d.test.length, 233);
  assert.ok(d.test.length >= 12 && d.test.length <= 36, `test=${d.test.length}`);
  const train = new Set(d.train.map((s) => s.id));
  assert.ok(d.test.every((s) => !train.has(s.id)));
  assert.deepEqual(sotu({ splitSeed: 99 }).test.map((s) => s.id), d.test.map((s) => s.id));
});
