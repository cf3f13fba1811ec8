import assert from "node:assert/strict";
import { METHODS } from "./registry.ts";

const README = new URL("../README.md", import.meta.url);

Deno.test("README's method table lists exactly the registered methods, with their mergeable flag", async () => {
  const text = await Deno.readTextFile(README);
  const section = text.slice(
    text.indexOf("## PEFT methods"),
    text.indexOf("## Quantization of the frozen base"),
  );
  const rows = new Map(
    [...section.matchAll(/^\| `([a-z0-9-]+)`\s*\| (yes|no)\s*\|/gm)].map((m) => [m[1], m[2] === "yes"]),
  );
  assert.deepEqual([...rows.keys()].sort(), [...METHODS.keys()].sort(), "README rows vs methods/registry.ts");
  for (const [name, method] of METHODS) {
    assert.equal(rows.get(name), method.mergeable, `${name}: README says mergeable ${rows.get(name)}`);
  }
});
