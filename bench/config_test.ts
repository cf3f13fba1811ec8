import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { STORIES_MODEL as STORIES, STORIES_TOKENIZER } from "../models/fixtures.ts";
import { Rng } from "../models/util/rng.ts";
import { initBackend } from "../models/backend.ts";
import { InputError, parseCli } from "../models/util/args.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { buildRunConfigs, checkOutDir, checkRunConfig, MAX_SEED } from "./config.ts";
import { type RunConfig, runIdOf } from "./record.ts";
import { MIN_JUDGED_UPDATES, trainingFailure } from "./run.ts";
import { expandPlan, parseSweep } from "./sweep_plan.ts";

await initBackend("wasm");

const dir = await Deno.makeTempDir({ prefix: "peft-config-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function configs(args: string[]): RunConfig[] {
  const { values } = parseCli(["--model", STORIES, ...args], BENCH_SPEC);
  return buildRunConfigs(values as Record<string, unknown>);
}

/** The error `fn` throws: its class and its one-line message. */
function failure(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (err) {
    return { kind: (err as Error).constructor.name, message: (err as Error).message };
  }
  assert.fail("expected an error");
}

function csv(name: string, rows: string[]): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, rows.join("\n") + "\n");
  return path;
}

Deno.test("seeds: the generator's 32-bit range is accepted, the rest and duplicates are one-line usage errors", () => {
  // The range is the generator's: it keeps `seed >>> 0`, so 2^32 would be seed 0 again.
  assert.equal(new Rng(MAX_SEED).seed, MAX_SEED);
  assert.notEqual(new Rng(MAX_SEED + 1).seed, MAX_SEED + 1);
  assert.deepEqual(configs(["--seed", `0,7,${MAX_SEED}`]).map((c) => c.seed), [0, 7, MAX_SEED]);
  assert.deepEqual(failure(() => configs(["--seed", "4294967296"])), {
    kind: "UsageError",
    message: "--seed 4294967296: a seed is an integer from 0 to 4294967295 (the generator's 32-bit range)",
  });
  for (const bad of ["-1", "1.5", "1e20", "x", ""]) {
    assert.match(
      failure(() => configs([`--seed=${bad}`])).message,
      /a seed is an integer from 0 to 4294967295/,
    );
  }
  assert.deepEqual(failure(() => configs(["--seed", "0,1,0"])), {
    kind: "UsageError",
    message: "--seed 0,1,0: seed 0 is given twice; list each seed once",
  });
  assert.match(failure(() => configs(["--seed", "3,03"])).message, /seed 3 is given twice/);
  assert.match(
    failure(() => configs(["--split-seed", "4294967296"])).message,
    /^--split-seed 4294967296: a seed is an integer from 0 to 4294967295/,
  );
});

Deno.test("method options: a flag and an --opt giving the same option differently is a usage error", () => {
  assert.deepEqual(failure(() => configs(["--rank", "4", "--opt", "rank=2"])), {
    kind: "UsageError",
    message: "--rank 4 and --opt rank=2 set 'rank' differently; give it once",
  });
  assert.match(
    failure(() => configs(["--targets", "q+v", "--opt", "targets=all-linear"])).message,
    /--targets q\+v and --opt targets=all-linear set 'targets' differently/,
  );
  assert.match(
    failure(() => configs(["--opt", "alpha=8", "--opt", "alpha=16"])).message,
    /--opt alpha=8 and --opt alpha=16 set 'alpha' differently/,
  );
  assert.equal(configs(["--rank", "4", "--opt", "rank=4"])[0].methodOptions.rank, 4);
});

Deno.test("--data-opt and --tokenizer: schema-checked, in the config (and run id) only when given", async () => {
  const path = csv("topics.csv", ["sentence,topic", "a,x", "b,y"]);
  const [c] = configs([
    "--dataset",
    `csv:${path}`,
    "--data-opt",
    "textColumn=sentence",
    "--data-opt",
    "labelColumn=topic",
    "--data-opt",
    "testFraction=0.5",
  ]);
  assert.deepEqual(c.dataOptions, { textColumn: "sentence", labelColumn: "topic", testFraction: 0.5 });
  assert.deepEqual(failure(() => configs(["--data-opt", "lang=de"])), {
    kind: "UsageError",
    message: "--data-opt: dataset wordnet-lex does not take option 'lang'; valid keys: maxDev, maxTest",
  });
  assert.match(failure(() => configs(["--data-opt", "lang"])).message, /--data-opt lang: expected KEY=VALUE/);
  assert.match(
    failure(() => configs(["--data-opt", "maxTest=5", "--data-opt", "maxTest=6"])).message,
    /--data-opt maxTest=5 and --data-opt maxTest=6 set 'maxTest' differently/,
  );
  assert.deepEqual(failure(() => configs(["--tokenizer", join(dir, "nope.json")])), {
    kind: "InputError",
    message: `tokenizer not found: ${join(dir, "nope.json")} (check --tokenizer)`,
  });
  const [plain] = configs([]);
  const [withTok] = configs(["--tokenizer", STORIES_TOKENIZER]);
  assert.ok(!("tokenizer" in plain) && !("dataOptions" in plain));
  assert.equal(withTok.tokenizer, STORIES_TOKENIZER);
  assert.notEqual(await runIdOf(withTok), await runIdOf(plain));
  // The tokenizer is the model's own, so the run loads and checks.
  await checkRunConfig(withTok, { method: true, data: false });
});

Deno.test("run ids: the smoke suite's configs keep the ids of the committed baselines", async () => {
  const smoke = fileURLToPath(new URL("./sweeps/smoke.json", import.meta.url));
  const baselines = fileURLToPath(new URL("../baselines/", import.meta.url));
  const plan = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(smoke))));
  const committed = [...Deno.readDirSync(baselines)].map((e) => basename(e.name, ".json"))
    .filter((n) => /^(classify|retrieve|lm)-/.test(n));
  assert.deepEqual(plan.runs.map((r) => r.runId).sort(), committed.sort());
  assert.ok(plan.runs.every((r) => !("tokenizer" in r.config) && !("dataOptions" in r.config)));
});

Deno.test("--out: a file (or a path under one) is an input error before any work; folders are fine", () => {
  const file = join(dir, "records.json");
  Deno.writeTextFileSync(file, "{}");
  assert.deepEqual(failure(() => checkOutDir(file)), {
    kind: "InputError",
    message: `--out ${file} is a file, not a folder; give a folder for the run records`,
  });
  assert.match(
    failure(() => checkOutDir(join(file, "sub"))).message,
    /is under .*records\.json, a file, not a folder/,
  );
  checkOutDir(dir);
  checkOutDir(join(dir, "new", "deeper"));
  assert.ok(!Deno.statSync(dir).isFile);
});

Deno.test("checkRunConfig: --max-length beyond the model's context and unusable datasets are input errors", async () => {
  const [long] = configs(["--max-length", "600"]);
  await assert.rejects(
    () => checkRunConfig(long),
    (err: Error) =>
      err instanceof InputError &&
      err.message === `--max-length 600 exceeds the context of model ${STORIES} (512 tokens); ` +
          "use --max-length 512 or less",
  );
  const one = csv("one.csv", ["text,label", ...Array.from({ length: 12 }, (_, i) => `t${i},pos`)]);
  const [single] = configs(["--dataset", `csv:${one}`]);
  await assert.rejects(
    () => checkRunConfig(single),
    (err: Error) => err instanceof InputError && /only one class \('pos'\)/.test(err.message),
  );
  const two = csv("two.csv", ["text,label", ...Array.from({ length: 20 }, (_, i) => `t${i},${i % 2}`)]);
  const [ok] = configs(["--dataset", `csv:${two}`, "--train-per-class", "4"]);
  const data = await checkRunConfig(ok);
  assert.equal(data?.task, "classify");
});

Deno.test("trainingFailure: overflowing parameters, and a loss that never falls below its start", () => {
  const ok = tf.variable(tf.tensor1d([1, -2, 3]));
  const huge = tf.variable(tf.tensor1d([1e30, 0]));
  const nan = tf.variable(tf.tensor1d([NaN, 0]));
  const curve = (losses: number[]) => losses.map((loss) => ({ loss }));
  const falling = curve(Array.from({ length: MIN_JUDGED_UPDATES }, (_, i) => 3 - 0.1 * i));
  const flat = curve(Array.from({ length: MIN_JUDGED_UPDATES }, (_, i) => 3.2 + 0.01 * (i % 3)));
  assert.equal(trainingFailure(falling, [ok]), null);
  assert.match(trainingFailure(falling, [ok, huge])!, /^trainable parameters overflowed \(1 of 2 tensors/);
  assert.match(trainingFailure(falling, [nan])!, /overflowed \(1 of 1 tensors/);
  assert.equal(
    trainingFailure(flat, [ok]),
    `loss never fell below its start over ${MIN_JUDGED_UPDATES} updates (3.2000 at step 0, lowest later 3.2000): ` +
      "the run diverged or did not learn; lower --lr or --head-lr",
  );
  // A short run is not judged by its curve (batch-to-batch noise), and no trainables means no probe.
  assert.equal(trainingFailure(flat.slice(0, MIN_JUDGED_UPDATES - 1), [ok]), null);
  assert.equal(trainingFailure([], []), null);
  tf.dispose([ok, huge, nan]);
});

Deno.test("--quant-opt: options the scheme takes enter the config; others are one-line usage errors", () => {
  const [gptq] = configs(["--quant", "gptq4", "--quant-opt", "actOrder=true", "--quant-opt", "damping=0.05"]);
  assert.deepEqual(gptq.quant, { scheme: "gptq4", actOrder: true, damping: 0.05 });
  const [int8] = configs(["--quant", "llm-int8", "--quant-opt", "outlierThreshold=4"]);
  assert.equal(int8.quant.outlierThreshold, 4);
  assert.deepEqual(configs([])[0].quant, { scheme: "none" });
  for (
    const [args, pattern] of [
      [["--quant", "nf4", "--quant-opt", "actOrder=true"], /actOrder/],
      [["--quant", "gptq4", "--quant-opt", "bogus=1"], /unknown quant option; allowed:/],
      [["--quant", "gptq4", "--quant-opt", "damping"], /use KEY=VALUE/],
      [["--quant", "gptq4", "--quant-opt", "damping=abc"], /expected a number/],
    ] as const
  ) {
    const f = failure(() => configs([...args]));
    assert.equal(f.kind, "UsageError", f.message);
    assert.match(f.message, pattern);
    assert.ok(!f.message.includes("\n"));
  }
});

Deno.test("--max-eval-mode: stratified enters the config (classification only); first leaves run ids as they were", async () => {
  const [plain] = configs(["--max-eval", "20"]);
  const [first] = configs(["--max-eval", "20", "--max-eval-mode", "first"]);
  const [strat] = configs(["--max-eval", "20", "--max-eval-mode", "stratified"]);
  assert.equal("maxEvalMode" in first, false);
  assert.equal(await runIdOf(first), await runIdOf(plain));
  assert.equal(strat.maxEvalMode, "stratified");
  assert.notEqual(await runIdOf(strat), await runIdOf(plain));
  for (
    const [args, pattern] of [
      [["--max-eval-mode", "random"], /--max-eval-mode random: use first or stratified/],
      [["--dataset", "sotu", "--max-eval-mode", "stratified"], /needs a classification dataset/],
    ] as const
  ) {
    const f = failure(() => configs([...args]));
    assert.equal(f.kind, "UsageError");
    assert.match(f.message, pattern);
  }
});

Deno.test("--forgetting-text: in the config only when given; a missing file is an input error naming the flag", () => {
  assert.equal("forgettingText" in configs([])[0], false);
  assert.equal(configs(["--forgetting-text", STORIES_TOKENIZER])[0].forgettingText, STORIES_TOKENIZER);
  const f = failure(() => configs(["--forgetting-text", "/nonexistent.txt"]));
  assert.equal(f.kind, "InputError");
  assert.match(f.message, /forgetting text not found: \/nonexistent.txt \(check --forgetting-text\)/);
});

Deno.test("--model ORG/NAME resolves in the local Hugging Face cache; a missing revision is one input error", async () => {
  const cache = await Deno.makeTempDir();
  const before = Deno.env.get("HF_HUB_CACHE");
  try {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const snapshot = join(cache, "models--acme--tiny", "snapshots", commit);
    await Deno.mkdir(snapshot, { recursive: true });
    await Deno.mkdir(join(cache, "models--acme--tiny", "refs"));
    await Deno.writeTextFile(join(cache, "models--acme--tiny", "refs", "main"), commit);
    const defaultDir = fileURLToPath(new URL("../models/default/", import.meta.url));
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) {
      await Deno.copyFile(join(defaultDir, f), join(snapshot, f));
    }
    Deno.env.set("HF_HUB_CACHE", cache);
    const { values } = parseCli(["--model", "acme/tiny"], BENCH_SPEC);
    assert.equal(buildRunConfigs(values as Record<string, unknown>)[0].model, "acme/tiny");
    const missing = parseCli(["--model", "acme/tiny@v2"], BENCH_SPEC).values;
    const f = failure(() => buildRunConfigs(missing as Record<string, unknown>));
    assert.equal(f.kind, "InputError");
    assert.match(f.message, /no revision 'v2'.*deno task fetch-model acme\/tiny@v2/);
  } finally {
    if (before === undefined) Deno.env.delete("HF_HUB_CACHE");
    else Deno.env.set("HF_HUB_CACHE", before);
    await Deno.remove(cache, { recursive: true });
  }
});
