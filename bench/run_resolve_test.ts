import assert from "node:assert/strict";
import { STORIES_MODEL } from "../models/fixtures.ts";
import { DEFAULT_MODEL_DIR } from "../models/load.ts";
import { parseCli, UsageError } from "../models/util/args.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { buildRunConfigs, checkRunConfig } from "./config.ts";
import type { RunConfig } from "./record.ts";
import { loftqMethods, resolveRun } from "./run_resolve.ts";

function config(args: string[]): RunConfig {
  const { values } = parseCli(["--model", STORIES_MODEL, ...args], BENCH_SPEC);
  return buildRunConfigs(values as Record<string, unknown>)[0];
}

/** The error `fn` throws: its class and message. */
function failure(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (err) {
    return { kind: (err as Error).constructor.name, message: (err as Error).message };
  }
  assert.fail("expected an error");
}

Deno.test("resolveRun: the method with parsed options, the quantization with defaults, model path and dataset request", () => {
  const plain = resolveRun({ ...config(["--rank", "4"]), model: "default" });
  assert.equal(plain.method.definition.name, "lora");
  assert.deepEqual(plain.method.options, { targets: "q+v", rank: 4, alpha: 16 });
  assert.equal(plain.quant, null);
  assert.equal(plain.loftqIterations, 0);
  assert.equal(plain.modelPath, DEFAULT_MODEL_DIR);
  assert.deepEqual(plain.dataset, { name: "wordnet-lex", splitSeed: 0, trainPerClass: 32 });
  const q = resolveRun(config(["--quant", "nf4", "--double-quant", "--loftq", "2"]));
  // QLoRA's defaults: block 64 unless --block-size says otherwise.
  assert.deepEqual([q.quant?.scheme, q.quant?.blockSize, q.quant?.doubleQuant], ["nf4", 64, true]);
  assert.equal(q.loftqIterations, 2);
  assert.equal(q.modelPath, STORIES_MODEL);
  // Resolving reads no file: a config naming a missing model still resolves.
  assert.equal(
    resolveRun({ ...q.config, model: "/nonexistent/model.bin" }).modelPath,
    "/nonexistent/model.bin",
  );
});

Deno.test("resolveRun: LoftQ only for methods declaring a plan and on a quantized base; bad options are usage errors", () => {
  // The LoRA family's members whose adapters are exactly s B A on the frozen base.
  assert.deepEqual(loftqMethods(), ["lora", "rslora"]);
  const base = config(["--quant", "nf4", "--loftq", "1"]);
  // A config written by hand (a sweep file, a record) goes through the same checks as the flags.
  assert.deepEqual(failure(() => resolveRun({ ...base, method: "dora" })), {
    kind: "UsageError",
    message: "--loftq initialises LoRA factors: use --method lora or rslora, not dora",
  });
  assert.deepEqual(failure(() => config(["--quant", "nf4", "--loftq", "1", "--method", "pissa"])), {
    kind: "UsageError",
    message: "--loftq initialises LoRA factors: use --method lora or rslora, not pissa",
  });
  assert.deepEqual(failure(() => resolveRun({ ...base, quant: { scheme: "none" } })), {
    kind: "UsageError",
    message: "--loftq needs a quantized base: add --quant nf4 (or another scheme)",
  });
  assert.deepEqual(
    failure(() => resolveRun({ ...base, method: "bitfit" })).message,
    "method bitfit does not take options 'rank', 'alpha'",
  );
  assert.match(
    failure(() => resolveRun({ ...base, method: "lorax" })).message,
    /^unknown method 'lorax'; known methods: /,
  );
  assert.match(
    failure(() => resolveRun({ ...base, quant: { scheme: "int8", doubleQuant: true } })).message,
    /^--quant int8: doubleQuant applies only to 4-bit/,
  );
});

Deno.test("checkRunConfig resolves before it loads the model: a bad config fails as input, whatever the model path", async () => {
  const bad = {
    ...config(["--quant", "nf4", "--loftq", "1"]),
    method: "dora",
    model: "/nonexistent/model.bin",
  };
  await assert.rejects(
    () => checkRunConfig(bad),
    (err: Error) => err instanceof UsageError && err.message.startsWith("--loftq initialises LoRA factors"),
  );
});
