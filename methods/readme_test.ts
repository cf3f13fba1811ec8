import assert from "node:assert/strict";
import { methodReadmeTable, METHODS } from "./registry.ts";

/** Cells of the Markdown table rows between the README's `methods` markers. */
function cells(table: string): string[][] {
  return table.split("\n").filter((l) => l.startsWith("|")).slice(2) // header and rule
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
}

Deno.test("README's method table is the registry's (names, mergeable flag, descriptions)", async () => {
  const text = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const m = /<!-- methods:start -->([\s\S]*?)<!-- methods:end -->/.exec(text);
  assert.ok(m, "README.md lost its methods markers");
  assert.deepEqual(
    cells(m[1]),
    cells(methodReadmeTable()),
    "regenerate it: deno run --allow-read --allow-write scripts/readme_tables.ts && deno fmt README.md",
  );
  assert.deepEqual(cells(m[1]).map((r) => r[0]), [...METHODS.keys()].map((n) => `\`${n}\``));
});
