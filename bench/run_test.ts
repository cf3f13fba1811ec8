import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { fileURLToPath } from "node:url";
import { initBackend } from "../models/backend.ts";
import { executeRun } from "./run.ts";
import { buildRunConfigs } from "./config.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { InputError, parseCli } from "../models/util/args.ts";
import type { RunConfig } from "./record.ts";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));

function config(args: string[]): RunConfig {
  const { values } = parseCli(["--model", STORIES, "--max-eval", "20", ...args], BENCH_SPEC);
  return buildRunConfigs(values as Record<string, unknown>)[0];
}

const backend = await initBackend("wasm");

Deno.test("bench: a classification run records metrics, timing, memory and sizes; reruns are identical", async () => {
  const c = config(["--train-per-class", "2", "--epochs", "1", "--rank", "4"]);
  const a = await executeRun(c, { backend, quiet: true });
  assert.equal(a.status, "success", a.error);
  assert.ok(a.metrics.accuracy >= 0 && a.metrics.accuracy <= 1);
  assert.equal(a.perItem.length, 20);
  // LoRA r=4 on q (64x64) and v (32x64) in 5 layers, plus the 26-class head on dim 64.
  assert.equal(a.size.trainableParams, 5 * 4 * ((64 + 64) + (64 + 32)) + 26 * 64 + 26);
  assert.ok(a.memory.peakTrainBytes > a.memory.breakdown.frozenWeights);
  assert.equal(a.memory.breakdown.optimizerState, 8 * a.size.trainableParams);
  assert.ok(a.timing.stepLatencyMs.n > 0 && a.timing.inferLatencyMs.p50 > 0 && a.timing.calibrationMs > 0);
  assert.equal(a.curve.length, Math.ceil((26 * 2) / 16));
  assert.equal(a.details?.leakedTensors, undefined, "the run leaked tensors");
  const b = await executeRun(c, { backend, quiet: true });
  assert.deepEqual(b.metrics, a.metrics);
  assert.deepEqual(b.curve.map((p) => p.loss), a.curve.map((p) => p.loss));
  assert.equal(b.runId, a.runId);
});

/** Flags of a run whose loss overflows within its 4 steps. */
const DIVERGING = [
  "--train-per-class",
  "2",
  "--steps",
  "4",
  "--lr",
  "1e30",
  "--head-lr",
  "1e30",
  "--clip",
  "0",
];

Deno.test("bench: a diverging run is recorded as failed with its reason", async () => {
  const c = config(DIVERGING);
  const r = await executeRun(c, { backend, quiet: true });
  assert.equal(r.status, "failed");
  assert.match(r.error!, /loss became (NaN|Infinity|-Infinity) at step \d/);
});

Deno.test("bench: validateSetup throws setup errors as input errors and records training failures", async () => {
  // A method option that fits no layer is bad input: thrown before training, ready() never called.
  let ready = 0;
  const setup = { ready: () => ready++ };
  const badInputs: [string[], RegExp][] = [
    [["--opt", "targets=nowhere"], /nowhere/],
    [["--max-length", "100000"], /--max-length 100000 exceeds the context/],
  ];
  for (const [flags, message] of badInputs) {
    await assert.rejects(
      () => executeRun(config(["--steps", "2", ...flags]), { backend, quiet: true, validateSetup: setup }),
      (err: Error) => err instanceof InputError && message.test(err.message),
    );
  }
  assert.equal(ready, 0);
  // A diverging run passed setup: ready() once, and its failure is a record, not an exception.
  const r = await executeRun(config(DIVERGING), { backend, quiet: true, validateSetup: setup });
  assert.equal(ready, 1);
  assert.equal(r.status, "failed");
});

Deno.test("bench: --lr 1e30 whose loss stays finite (chance level) is failed: its parameters overflowed", async () => {
  // Before: "success", with lora_B near 1e30 and the loss at ln(26), chance level.
  const r = await executeRun(config(["--train-per-class", "2", "--steps", "12", "--lr", "1e30"]), {
    backend,
    quiet: true,
  });
  assert.ok(r.curve.length === 12 && r.curve.every((p) => Number.isFinite(p.loss)));
  assert.equal(r.status, "failed");
  assert.match(
    r.error!,
    /^trainable parameters overflowed \(\d+ of \d+ tensors .*\); lower --lr or --head-lr$/,
  );
});

Deno.test("bench: retrieval and language-modelling runs produce their metrics", async () => {
  const r = await executeRun(
    config(["--dataset", "wordnet-concepts", "--train-size", "32", "--epochs", "1", "--max-corpus", "200"]),
    {
      backend,
      quiet: true,
    },
  );
  assert.equal(r.status, "success", r.error);
  for (const m of ["mrr", "recall@1", "recall@10", "ndcg@10"]) {
    assert.ok(r.metrics[m] >= 0 && r.metrics[m] <= 1, m);
  }
  assert.ok(r.metrics["recall@10"] >= r.metrics["recall@1"]);
  assert.ok(r.perItem.every((q) => typeof q.mrr === "number"));
  assert.equal(r.details?.corpusSize, 200);
  const l = await executeRun(
    config(["--dataset", "wordnet-glosses", "--train-size", "32", "--epochs", "1"]),
    {
      backend,
      quiet: true,
    },
  );
  assert.equal(l.status, "success", l.error);
  assert.ok(l.metrics.perplexity > 1);
  assert.ok(Math.abs(Math.log2(l.metrics.bytePerplexity) - l.metrics.bitsPerByte) < 1e-9);
});

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--model", STORIES, ...args],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "bench CLI: bad input gives one clear error line and exit code 2",
  ignore: !(await Deno.permissions.query({ name: "run" })).state.startsWith("granted"),
  fn: async () => {
    const cases: [string[], RegExp][] = [
      [["--method", "lorax"], /unknown method 'lorax'; known methods: frozen, full, lora/],
      [["--rank", "999"], /--rank 999 is impossible for layers.0.attn.q \[64x64\]: at most 64/],
      [["--targets", "w9"], /--targets w9: no layer named/],
      [["--method", "bitfit", "--rank", "4"], /method bitfit does not take option 'rank'/],
      [["--dataset", "nope"], /unknown dataset "nope"/],
      [["--quant", "int8", "--double-quant"], /doubleQuant applies only to 4-bit/],
      [
        ["--method", "dora", "--quant", "nf4", "--loftq", "1"],
        /--loftq initialises LoRA factors: use --method lora or rslora, not dora/,
      ],
      [["--loftq", "1"], /--loftq needs a quantized base/],
      [["--quant", "gptq4", "--loftq", "1"], /--quant gptq4 needs calibration activations: use --quant nf4/],
      [["--quant", "nf4", "--quant-opt", "damping=0.1"], /damping/],
      [["--train-per-class", "2", "--dataset", "sotu"], /--train-per-class needs a classification dataset/],
      [["--frobnicate"], /Unknown option '--frobnicate'/],
    ];
    for (const [args, re] of cases) {
      const { code, stderr } = await cli(args);
      const errors = stderr.split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(code, 2, `${args.join(" ")}: exit ${code}\n${stderr}`);
      assert.equal(errors.length, 1, stderr);
      assert.match(errors[0], re);
    }
  },
});

Deno.test("bench: QLoRA (nf4 + double quant) records real packed sizes; LoftQ runs end to end", async () => {
  const plain = await executeRun(
    config(["--train-per-class", "2", "--steps", "2", "--quant", "nf4", "--double-quant", "--rank", "4"]),
    { backend, quiet: true },
  );
  assert.equal(plain.status, "success", plain.error);
  // nf4 block 64 with double quantization: 4 + 8/64 + 32/(64*256) bits per weight plus the per-tensor
  // mean (32 bits) of each 256-block group's constants, a little above 4.127.
  assert.ok(
    plain.quant!.bitsPerParam > 4.12 && plain.quant!.bitsPerParam < 4.2,
    String(plain.quant!.bitsPerParam),
  );
  assert.ok(plain.timing.inferLatencyQuantizedMs!.n > 0 && plain.quant!.dequantCostMs !== null);
  const loftq = await executeRun(
    config(["--train-per-class", "2", "--steps", "2", "--quant", "nf4", "--rank", "4", "--loftq", "2"]),
    { backend, quiet: true },
  );
  assert.equal(loftq.status, "success", loftq.error);
  assert.equal(loftq.quant!.loftq, 2);
});

Deno.test("bench: GPTQ calibrates on a seeded sample of training items; records carry per-layer quantization figures", async () => {
  const args = [
    "--train-per-class",
    "2",
    "--steps",
    "2",
    "--rank",
    "4",
    "--quant",
    "gptq4",
    "--block-size",
    "32",
  ];
  const r = await executeRun(config(args), { backend, quiet: true });
  assert.equal(r.status, "success", r.error);
  const q = r.quant as unknown as Record<string, unknown> & {
    layers: Record<string, { calibrationRows: number }>;
  };
  const layers = Object.values(q.layers);
  assert.equal(layers.length, 5 * 7, "every decoder linear of the 5-layer fixture is quantized");
  // Each layer sees the sampled items' tokens (at most CALIBRATION_ROWS, at least one row per item).
  assert.ok(
    layers.every((l) => l.calibrationRows > 0 && l.calibrationRows <= 2048),
    JSON.stringify(layers[0]),
  );
  assert.equal(q.calibrationRows, layers.reduce((s, l) => s + l.calibrationRows, 0));
  assert.ok(typeof q.meanRelativeError === "number" && q.meanRelativeError > 0 && q.meanRelativeError < 0.2);
  assert.equal(r.primaryMetric, "accuracy");
  assert.equal(r.primaryDirection, "higher");
  // The same seed draws the same calibration sample: identical metrics.
  const again = await executeRun(config(args), { backend, quiet: true });
  assert.deepEqual(again.metrics, r.metrics);
  // --quant-opt calibrationItems=N records fewer items' tokens.
  const few = await executeRun(config([...args, "--quant-opt", "calibrationItems=2"]), {
    backend,
    quiet: true,
  });
  const rows = (x: typeof r) => (x.quant as unknown as { calibrationRows: number }).calibrationRows;
  assert.ok(rows(few) > 0 && rows(few) < rows(r), `${rows(few)} vs ${rows(r)}`);
});

Deno.test("bench: --max-eval-mode stratified scores a per-class sample; the default scores the split's first items", async () => {
  const run = (mode: string[]) =>
    executeRun(config(["--train-per-class", "2", "--steps", "1", "--max-eval", "16", ...mode]), {
      backend,
      quiet: true,
    });
  const first = await run([]);
  const strat = await run(["--max-eval-mode", "stratified"]);
  assert.equal(first.status, "success", first.error);
  assert.equal(strat.status, "success", strat.error);
  const labels = (r: typeof first) => new Set((r.perItem as { label: number }[]).map((p) => p.label));
  assert.equal(strat.perItem.length, 16);
  // wordnet-lex has more classes than 16 items can hold twice: a stratified sample covers more of them.
  assert.ok(labels(strat).size >= labels(first).size, `${labels(strat).size} vs ${labels(first).size}`);
  assert.notDeepEqual(
    strat.perItem.map((p) => (p as { id: string }).id),
    first.perItem.map((p) => (p as { id: string }).id),
  );
});

Deno.test("bench: a classification run's saved adapter carries its head (PEFT SEQ_CLS) and its quantized base's note", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await executeRun(
      config(["--train-per-class", "2", "--steps", "2", "--rank", "4", "--quant", "nf4"]),
      {
        backend,
        quiet: true,
        saveAdapterDir: dir,
      },
    );
    assert.equal(r.status, "success", r.error);
    const folder = `${dir}/${r.runId}`;
    const peft = JSON.parse(await Deno.readTextFile(`${folder}/adapter_config.json`));
    assert.equal(peft.task_type, "SEQ_CLS");
    assert.deepEqual(peft.modules_to_save, ["score"]);
    const bytes = await Deno.readFile(`${folder}/adapter_model.safetensors`);
    const header = JSON.parse(
      new TextDecoder().decode(
        bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))),
      ),
    );
    const score = Object.keys(header).find((k) => k.endsWith("score.weight"));
    assert.ok(score, Object.keys(header).join(", "));
    assert.deepEqual(header[score!].shape, [26, 64]); // wordnet-lex's 26 classes x the fixture's dim
    assert.match(await Deno.readTextFile(`${folder}/README.md`), /nf4/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench: every quantized layer's output error on the fixed batch; 8-bit errs less than 4-bit", async () => {
  const run = (scheme: string) =>
    executeRun(config(["--train-per-class", "2", "--steps", "1", "--rank", "4", "--quant", scheme]), {
      backend,
      quiet: true,
    });
  const [int8, nf4] = [await run("int8"), await run("nf4")];
  for (const r of [int8, nf4]) {
    assert.equal(r.status, "success", r.error);
    const layers = Object.values(
      (r.quant as unknown as { layers: Record<string, { outputRelativeError: number }> }).layers,
    );
    assert.equal(layers.length, 35);
    assert.ok(
      layers.every((l) => l.outputRelativeError > 0 && l.outputRelativeError < 0.1),
      JSON.stringify(layers[0]),
    );
  }
  const mean = (r: typeof int8) =>
    (r.quant as unknown as { meanOutputRelativeError: number }).meanOutputRelativeError;
  assert.ok(mean(int8) < mean(nf4) / 10, `${mean(int8)} vs ${mean(nf4)}`);
});

Deno.test("failureReason: a run that exhausts the wasm heap names the flags that fix it", async () => {
  const { failureReason } = await import("./run.ts");
  assert.equal(failureReason(new Error("loss became NaN at step 3\nstack")), "loss became NaN at step 3");
  for (const m of ["Aborted()", "memory access out of bounds"]) {
    assert.equal(
      failureReason(new Error(m)),
      `${m}: the 4 GiB wasm heap ran out; add --grad-checkpoint, or lower --batch-size or --max-length`,
    );
  }
});
