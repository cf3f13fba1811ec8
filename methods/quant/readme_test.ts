import assert from "node:assert/strict";
import { BENCH_SPEC } from "../../bench/bench_options.ts";
import { QUANT_OPTIONS, QUANT_SCHEMES } from "./config.ts";
import { quantReadmeTable, SCHEMES } from "./schemes.ts";

/** Cells of the Markdown table rows between the README's quant-schemes markers. */
function readmeRows(): string[][] {
  const text = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  const m = /<!-- quant-schemes:start -->([\s\S]*?)<!-- quant-schemes:end -->/.exec(text);
  assert.ok(m, "README.md lost its quant-schemes markers");
  return m[1].split("\n").filter((l) => l.startsWith("|")).slice(2) // header and rule
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
}

Deno.test("the README's scheme table is the registry's (names, calibration, options, summaries)", () => {
  const readme = readmeRows();
  const generated = quantReadmeTable().split("\n").slice(2).map((l) =>
    l.slice(1, -1).split("|").map((c) => c.trim())
  );
  assert.deepEqual(
    readme,
    generated,
    "regenerate the table with quantReadmeTable() (methods/quant/schemes.ts)",
  );
  assert.deepEqual(readme.map((r) => r[0]), SCHEMES.map((s) => `\`${s.name}\``));
});

Deno.test("--quant help lists every scheme; every scheme option is described", () => {
  const help = (BENCH_SPEC.quant as { help: string }).help;
  for (const s of QUANT_SCHEMES) assert.ok(help.includes(s), `--quant help misses ${s}`);
  for (const s of SCHEMES) {
    for (const o of s.options) assert.ok(o in QUANT_OPTIONS, `${s.name}: option ${o} has no description`);
  }
  assert.ok("quant-opt" in BENCH_SPEC);
});
