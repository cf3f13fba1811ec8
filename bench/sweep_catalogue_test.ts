/**
 * The catalogue sweep (`bench/sweeps/catalogue.json`): every registered method at its defaults x 3
 * seeds. The plan must expand to exactly METHODS x 3 valid runs (nothing dropped, excluded or
 * collapsed), and each method's planned options must apply to a model of the embedded default
 * model's shape, so no entry fails on a layer size only when the sweep reaches it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { initBackend } from "../models/backend.ts";
import { configFromHf } from "../models/hf.ts";
import { LlamaModel } from "../models/llama.ts";
import { DEFAULT_MODEL_DIR } from "../models/load.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "../methods/common.ts";
import { METHODS, parseMethodConfig } from "../methods/registry.ts";
import { expandPlan, parseSweep } from "./sweep_plan.ts";

const CATALOGUE = fileURLToPath(new URL("./sweeps/catalogue.json", import.meta.url));

async function plan() {
  return await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(CATALOGUE)), CATALOGUE));
}

Deno.test("catalogue sweep: every registered method x 3 seeds, no entry dropped, excluded or collapsed", async () => {
  const p = await plan();
  assert.equal(p.productSize, METHODS.size * 3);
  assert.equal(p.runs.length, METHODS.size * 3);
  assert.equal(p.excluded + p.collapsed, 0);
  assert.deepEqual(p.notices, []);
  assert.equal(new Set(p.runs.map((r) => r.runId)).size, p.runs.length);
  assert.deepEqual([...new Set(p.runs.map((r) => r.config.method))].sort(), [...METHODS.keys()].sort());
  for (const name of METHODS.keys()) {
    const seeds = p.runs.filter((r) => r.config.method === name).map((r) => r.config.seed);
    assert.deepEqual(seeds, [0, 1, 2], name);
  }
  assert.ok(p.runs.every((r) => r.config.task === "classify"));
});

Deno.test("catalogue sweep: each method's planned options apply to a model shaped like the embedded one", async () => {
  await initBackend("cpu");
  const cfg = configFromHf(JSON.parse(await Deno.readTextFile(`${DEFAULT_MODEL_DIR}/config.json`)));
  const p = await plan();
  for (const run of p.runs.filter((r) => r.config.seed === 0)) {
    const method = METHODS.get(run.config.method)!;
    const model = LlamaModel.random(cfg, new Rng(1), 0.02);
    const applied = method.apply(
      model,
      parseMethodConfig(method, run.config.methodOptions),
      plainContext(new Rng(0)),
    );
    assert.ok(applied.trainable.length > 0 || run.config.method === "frozen", run.config.method);
    applied.dispose();
    model.dispose();
  }
});
