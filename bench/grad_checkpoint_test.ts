import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { initBackend } from "../models/backend.ts";
import { parseCli } from "../models/util/args.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { buildRunConfigs } from "./config.ts";
import { type RunConfig, runIdOf } from "./record.ts";
import { executeRun } from "./run.ts";

function config(args: string[]): RunConfig {
  const { values } = parseCli(["--model", STORIES, "--max-eval", "8", ...args], BENCH_SPEC);
  return buildRunConfigs(values as Record<string, unknown>)[0];
}

const backend = await initBackend("wasm");

Deno.test("--grad-checkpoint enters the run config (and run id) only when given", async () => {
  const plain = config([]);
  const ckpt = config(["--grad-checkpoint"]);
  assert.ok(!("gradCheckpoint" in plain), "absent without the flag, so earlier run ids stay");
  assert.equal(ckpt.gradCheckpoint, true);
  const { gradCheckpoint: _, ...rest } = ckpt;
  assert.deepEqual(rest, plain);
  assert.notEqual(await runIdOf(ckpt), await runIdOf(plain));
});

Deno.test("bench --grad-checkpoint: the same losses and metrics as without (recompute, not approximation)", async () => {
  const args = ["--train-per-class", "1", "--steps", "3", "--batch-size", "8", "--rank", "4"];
  const a = await executeRun(config(args), { backend, quiet: true });
  const b = await executeRun(config([...args, "--grad-checkpoint"]), { backend, quiet: true });
  assert.equal(a.status, "success", a.error);
  assert.equal(b.status, "success", b.error);
  assert.deepEqual(b.config.gradCheckpoint, true);
  assert.deepEqual(b.curve, a.curve);
  assert.deepEqual(b.metrics, a.metrics);
  assert.equal(b.details?.leakedTensors, undefined, "the checkpointed run leaked tensors");
});
