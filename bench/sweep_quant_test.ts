/**
 * The quantization study (`bench/sweeps/quant.json`): every registered scheme (the 4-bit absmax ones
 * with and without double quantization) x 3 seeds, all valid, nothing dropped.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { BLOCK_SCHEMES } from "../methods/quant/config.ts";
import { SCHEMES } from "../methods/quant/schemes.ts";
import { expandPlan, parseSweep } from "./sweep_plan.ts";

const QUANT = fileURLToPath(new URL("./sweeps/quant.json", import.meta.url));

Deno.test("quant sweep: every registered scheme (4-bit absmax also with double quant) x 3 seeds, all valid", async () => {
  const p = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(QUANT)), QUANT));
  const expected = SCHEMES.flatMap((s) =>
    BLOCK_SCHEMES.includes(s.name) ? [`${s.name}`, `${s.name}+dq`] : [s.name]
  );
  assert.equal(p.runs.length, expected.length * 3);
  assert.equal(p.excluded + p.collapsed, 0);
  assert.deepEqual(p.notices, []);
  const key = (c: { quant: { scheme: string; doubleQuant?: boolean } }) =>
    `${c.quant.scheme}${c.quant.doubleQuant ? "+dq" : ""}`;
  assert.deepEqual([...new Set(p.runs.map((r) => key(r.config)))].sort(), expected.sort());
  assert.ok(p.runs.every((r) => r.config.method === "lora" && r.config.trainPerClass === 16));
});
