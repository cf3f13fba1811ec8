/** The README's findings study (`bench/sweeps/findings.json`): a valid plan whose hypotheses parse. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { expandPlan, parseSweep } from "./sweep_plan.ts";

const FINDINGS = fileURLToPath(new URL("./sweeps/findings.json", import.meta.url));

Deno.test("findings sweep: 36 valid runs (frozen collapses over rank), four hypotheses on its own factors", async () => {
  const spec = parseSweep(JSON.parse(await Deno.readTextFile(FINDINGS)), FINDINGS);
  const p = await expandPlan(spec);
  assert.equal(p.productSize, 48);
  assert.equal(p.collapsed, 12); // frozen x rank {4, 16}
  assert.equal(p.runs.length, 36);
  assert.deepEqual(
    (spec as unknown as { hypotheses: { factor: string }[] }).hypotheses.map((h) => h.factor),
    ["method", "quant", "rank", "train-per-class"],
  );
});
