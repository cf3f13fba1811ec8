/**
 * `deno run --allow-read --allow-write scripts/readme_tables.ts`: rewrite the README's generated tables
 * (methods from `methods/registry.ts`, quantization schemes from `methods/quant/schemes.ts`) between
 * their markers, then `deno fmt README.md` aligns them. `methods/readme_test.ts` and
 * `methods/quant/readme_test.ts` fail while the README disagrees with the registries.
 * @module
 */
import { methodReadmeTable } from "../methods/registry.ts";
import { quantReadmeTable } from "../methods/quant/schemes.ts";

/** Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` by `table`. */
export function replaceBetweenMarkers(text: string, name: string, table: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} ... ${end} markers`);
  return `${text.slice(0, i + start.length)}\n\n${table}\n\n${text.slice(j)}`;
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  let text = await Deno.readTextFile(path);
  text = replaceBetweenMarkers(text, "methods", methodReadmeTable());
  text = replaceBetweenMarkers(text, "quant-schemes", quantReadmeTable());
  await Deno.writeTextFile(path, text);
  console.log("README.md tables rewritten; run deno fmt README.md");
}
