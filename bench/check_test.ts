import assert from "node:assert/strict";
import { join } from "node:path";
import {
  benchmarkActionEntries,
  compareRecords,
  type HistoryEntry,
  jsonOutPaths,
  markdownTable,
  parsePolicy,
  type Policy,
  readPolicy,
  runCheck,
} from "./check.ts";
import { type RunRecord, SCHEMA_VERSION, writeRecord } from "./record.ts";
import { UsageError } from "./args.ts";

const POLICY_PATH = new URL("../baselines/policy.json", import.meta.url).pathname;
const policy: Policy = await readPolicy(POLICY_PATH);

/**
 * A record with the numbers of a real run (`deno task bench --steps 30 --train-size 64 --max-eval 32
 * --batch-size 8` on a small random model, native backend), per-item results left out.
 */
function record(runId = "classify-lora-s0-1f1624262990", edit: (r: RunRecord) => void = () => {}): RunRecord {
  const r: RunRecord = {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: "lora q+v r8 n64 seed0",
    status: "success",
    // deno-lint-ignore no-explicit-any
    config: { task: "classify", method: "lora", seed: 0, backend: "auto" } as any,
    metrics: { accuracy: 0.09375, macroF1: 0.006593406593406593 },
    perItem: [],
    curve: [],
    timing: {
      trainSeconds: 2.02,
      totalSeconds: 4.33,
      stepLatencyMs: { p50: 27.6, p95: 77.79, mean: 35.1, n: 30 },
      trainTokensPerSecond: 6950,
      inferLatencyMs: { p50: 1.255, p95: 8.02, mean: 3.01, n: 20 },
      calibrationMs: 0.848,
    },
    memory: {
      peakTrainBytes: 31_421_296,
      peakInferBytes: 1_284_184,
      breakdown: {
        frozenWeights: 476_000,
        trainable: 21_096,
        optimizerState: 42_192,
        activations: 30_882_008,
      },
      computed: ["activations"],
      rssBytes: 300_000_000,
      source: "tfjs tensor bytes (backend memory)",
    },
    size: {
      trainableParams: 5274,
      totalParams: 124_378,
      adapterBytes: 15_016,
      frozenBytes: 476_416,
      bitsPerFrozenParam: 32,
    },
    env: {
      deno: "2.9.6",
      tfjs: "4.22.0",
      backend: "native",
      backendDetail: "wasm + OpenBLAS sgemm (libopenblas.so.0, 2 threads)",
      cpu: "unknown CPU x2",
      gitCommit: null,
      gitDirty: null,
      startTime: "2026-01-01T00:00:00.000Z",
      hostname: "vm",
    },
  };
  edit(r);
  return r;
}

/** Scale a record's step latency (p50 and p95) and training throughput by `k` (k > 1: slower). */
function slower(k: number, calibration = 1) {
  return (r: RunRecord) => {
    const s = r.timing.stepLatencyMs;
    r.timing.stepLatencyMs = { ...s, p50: s.p50 * k, p95: s.p95 * k, mean: s.mean * k };
    r.timing.trainTokensPerSecond /= k;
    r.timing.calibrationMs *= calibration;
  };
}

const failing = (rows: { fails: boolean; metric: string; verdict: string }[]) =>
  rows.filter((r) => r.fails).map((r) => `${r.metric}: ${r.verdict}`);

Deno.test("the committed policy parses; a typo in a key is a one-line error naming the key", () => {
  assert.equal(policy.latency.runThreshold, 2.75);
  assert.equal(policy.size.trainableParams.rel, 0);
  const text = Deno.readTextFileSync(POLICY_PATH).replace('"peakTrainBytes"', '"peakTrainByte"');
  assert.throws(
    () => parsePolicy(text, "p.json"),
    /p\.json: memory.*peakTrainByte|p\.json: memory\.peakTrainBytes/,
  );
  assert.throws(() => parsePolicy("{", "p.json"), /p\.json: not valid JSON/);
});

Deno.test("identical records pass with every row ok", () => {
  const res = compareRecords([record()], [record()], policy);
  assert.equal(res.compared, 1);
  assert.deepEqual(res.failures, []);
  assert.ok(res.rows.some((r) => r.metric === "accuracy" && r.verdict === "ok"));
});

Deno.test("an injected quality drop fails; a change within tolerance passes; an improvement also fails", () => {
  const drop = compareRecords(
    [record()],
    [record(undefined, (r) => (r.metrics.accuracy -= 0.03125))],
    policy,
  );
  assert.deepEqual(failing(drop.rows), ["accuracy: regression"]);
  assert.match(drop.failures[0], /accuracy dropped from 0\.09375 to 0\.0625/);

  const tiny = compareRecords([record()], [record(undefined, (r) => (r.metrics.accuracy += 1e-9))], policy);
  assert.deepEqual(tiny.failures, []);

  const better = compareRecords(
    [record()],
    [record(undefined, (r) => (r.metrics.accuracy += 0.03125))],
    policy,
  );
  assert.deepEqual(failing(better.rows), ["accuracy: changed"]);
  assert.match(better.failures[0], /--update --reason/);

  // perplexity is lower-is-better in the policy: a rise is a regression.
  const ppl = compareRecords(
    [record(undefined, (r) => (r.metrics.perplexity = 40))],
    [record(undefined, (r) => (r.metrics.perplexity = 41))],
    policy,
  );
  assert.deepEqual(failing(ppl.rows), ["perplexity: regression"]);
});

Deno.test("a 3x slowdown fails; the same slowdown on a 3x slower machine (calibration) passes", () => {
  const res = compareRecords([record()], [record(undefined, slower(3))], policy);
  assert.deepEqual(failing(res.rows), [
    "stepLatencyMs.p50 / calibration: regression",
    "trainTokensPerSecond x calibration: regression",
  ]);
  // A slower machine: the calibration kernel slowed down as much, so the calibrated ratio is 1.
  const machine = compareRecords([record()], [record(undefined, slower(3, 3))], policy);
  assert.deepEqual(machine.failures, []);
  // A noisy calibration alone (kernel 3x faster, steps unchanged) is not a slowdown either.
  const noisyCal = compareRecords([record()], [record(undefined, slower(1, 1 / 3))], policy);
  assert.deepEqual(noisyCal.failures, []);
  // p50 3x slower but p95 faster: the tail disagrees, so it is noise.
  const disagree = compareRecords([record()], [record(undefined, (r) => {
    r.timing.stepLatencyMs = { ...r.timing.stepLatencyMs, p50: 27.6 * 3, p95: 70 };
  })], policy);
  assert.equal(failing(disagree.rows).filter((f) => f.startsWith("stepLatencyMs")).length, 0);
  // The same 3x slowdown measured over only 4 steps is reported, not gated (too few samples).
  const few = (r: RunRecord) => (r.timing.stepLatencyMs = { ...r.timing.stepLatencyMs, n: 4 });
  const short = compareRecords([record(undefined, few)], [record(undefined, (r) => {
    slower(3)(r);
    few(r);
  })], policy);
  assert.deepEqual(short.failures, []);
  assert.ok(
    short.rows.some((row) => row.metric.startsWith("stepLatencyMs") && row.verdict === "report only"),
  );
});

/** [calibrationMs, step p50, step p95, tokens/s] of repeated runs of two configs, measured on a loaded 2-core machine. */
const MEASURED: Record<string, [number, number, number, number][]> = {
  lora: [
    [2.5237, 52.03, 121.19, 3701],
    [0.9237, 45.46, 182.15, 3384],
    [0.6279, 18.95, 34.16, 10212],
    [0.848, 27.6, 77.79, 6950],
    [0.967, 33.29, 69.77, 6167],
    [0.8019, 29.78, 63.12, 6585],
    [0.4382, 23.79, 41.49, 8635],
    [0.7986, 29.16, 66.74, 6570],
    [0.9038, 21.82, 51.82, 8886],
    [0.7289, 23.94, 54.54, 8159],
    [1.0386, 24.89, 58.76, 7248],
  ],
  ia3: [
    [0.5893, 39.56, 100.98, 4226],
    [1.3506, 18.19, 37.88, 9597],
    [0.7878, 39.25, 87.72, 5730],
    [3.395, 18.2, 35.54, 10155],
    [1.0229, 47.36, 141.24, 3856],
    [1.045, 25.69, 46.94, 7399],
    [0.7376, 38.34, 59.05, 5181],
    [1.028, 28.61, 62.6, 6301],
    [2.105, 22.11, 53.42, 7748],
    [0.642, 42.05, 121.78, 5029],
    [0.7799, 26.42, 67.36, 7361],
    [4.0098, 56.57, 147.06, 3522],
  ],
};

function timed(runId: string, [cal, p50, p95, tps]: [number, number, number, number]): RunRecord {
  return record(runId, (r) => {
    r.timing = {
      ...r.timing,
      calibrationMs: cal,
      trainTokensPerSecond: tps,
      stepLatencyMs: { p50, p95, mean: p50, n: 30 },
    };
  });
}

Deno.test("latency wobble within the measured run-to-run noise never fails (all 242 ordered pairs)", () => {
  let pairs = 0;
  let wobbly = 0;
  for (const runs of Object.values(MEASURED)) {
    for (const a of runs) {
      for (const b of runs) {
        if (a === b) continue;
        pairs++;
        const res = compareRecords([timed("x", b)], [timed("x", a)], policy);
        assert.deepEqual(failing(res.rows), [], `baseline ${b} current ${a}`);
        if (a[1] / b[1] > 1.5) wobbly++;
      }
    }
  }
  assert.equal(pairs, 242);
  assert.ok(wobbly >= 20, "the data must contain large wobbles for this test to mean anything");
});

Deno.test("suite rule: every run 2x slower fails as a suite; too few runs or noise does not", () => {
  const base = MEASURED.lora.slice(0, 8).map((m, i) => timed(`run${i}`, m));
  const twice = base.map((r) =>
    record(r.runId, (x) => {
      x.timing = structuredClone(r.timing);
      slower(2)(x);
    })
  );
  const res = compareRecords(base, twice, policy);
  assert.deepEqual(failing(res.rows), ["stepLatencyMs median ratio: regression"]);
  assert.match(res.failures[0], /suite: median step p50 is x2\.00 slower over 8 runs/);

  const few = compareRecords(base.slice(0, 4), twice.slice(0, 4), policy);
  assert.deepEqual(few.failures, []);
  assert.ok(few.notices.some((n) => /needs 6 comparable runs, has 4/.test(n)));

  // Measured noise as a suite: the lora runs as baseline against the ia3 numbers as current.
  const noisy = MEASURED.ia3.slice(0, 8).map((m, i) => timed(`run${i}`, m));
  assert.deepEqual(compareRecords(base, noisy, policy).failures, []);
});

Deno.test("peak memory +10% fails, +1% passes, -10% is an improvement notice", () => {
  const grow =
    (k: number) => (r: RunRecord) => (r.memory.peakTrainBytes = Math.round(r.memory.peakTrainBytes * k));
  const up10 = compareRecords([record()], [record(undefined, grow(1.1))], policy);
  assert.deepEqual(failing(up10.rows), ["memory.peakTrainBytes: regression"]);
  assert.match(up10.failures[0], /peakTrainBytes grew 10\.0% \(tolerance 5\.0%\)/);
  assert.deepEqual(compareRecords([record()], [record(undefined, grow(1.01))], policy).failures, []);
  const down = compareRecords([record()], [record(undefined, grow(0.9))], policy);
  assert.deepEqual(down.failures, []);
  assert.ok(down.rows.some((r) => r.metric === "memory.peakTrainBytes" && r.verdict === "improved"));
});

Deno.test("parameter counts must match exactly", () => {
  const res = compareRecords([record()], [record(undefined, (r) => (r.size.trainableParams += 1))], policy);
  assert.deepEqual(failing(res.rows), ["size.trainableParams: changed"]);
});

Deno.test("missing runs fail with a clear message; extra runs are a notice", () => {
  const res = compareRecords([record("a"), record("b")], [record("a"), record("c")], policy);
  assert.deepEqual(failing(res.rows), ["run: missing"]);
  assert.equal(res.failures.length, 1);
  assert.match(res.failures[0], /^b \(lora q\+v r8 n64 seed0\): in the baseline but not in the results/);
  assert.ok(res.rows.some((r) => r.run === "c" && r.verdict === "extra" && !r.fails));
  assert.ok(res.notices.some((n) => /^c .*new run, not in the baseline/.test(n)));
});

Deno.test("another backend is not comparable (a notice); a failed run fails", () => {
  const other = compareRecords([record()], [record(undefined, (r) => {
    r.env.backend = "wasm";
    r.metrics.accuracy = 0.5;
  })], policy);
  assert.deepEqual(other.failures, []);
  assert.equal(other.compared, 0);
  assert.ok(other.rows.some((r) => r.verdict === "not comparable"));
  assert.match(other.notices[0], /tied to their backend/);

  const failed = compareRecords([record()], [record(undefined, (r) => {
    r.status = "failed";
    r.error = "loss became NaN";
  })], policy);
  assert.match(failed.failures[0], /the run failed: loss became NaN/);
});

Deno.test("markdown table: header, one row per comparison, pipes escaped, failures in bold", () => {
  const res = compareRecords([record()], [record(undefined, (r) => (r.metrics.accuracy = 0))], policy);
  const md = markdownTable([...res.rows, { ...res.rows[0], metric: "a|b" }]).split("\n");
  assert.equal(md[0], "| run | metric | baseline | current | delta | verdict |");
  assert.equal(md.length, 2 + res.rows.length + 1);
  assert.ok(md.some((l) => l.includes("| accuracy | 0.09375 | 0 | -0.09375 | **regression** |")));
  assert.ok(md.at(-1)!.includes("a\\|b"));
});

Deno.test("github-action-benchmark entries: {name, unit, value} arrays split by direction", () => {
  const recs = [record("a"), record("b", (r) => (r.metrics.perplexity = 12.5))];
  const { smaller, bigger } = benchmarkActionEntries(recs, policy);
  for (const e of [...smaller, ...bigger]) {
    assert.equal(typeof e.name, "string");
    assert.equal(typeof e.unit, "string");
    assert.ok(Number.isFinite(e.value), e.name);
    assert.deepEqual(
      Object.keys(e).filter((k) => !["name", "unit", "value", "range", "extra"].includes(k)),
      [],
    );
  }
  const names = [...smaller, ...bigger].map((e) => e.name);
  assert.equal(new Set(names).size, names.length, "names must be unique");
  const find = (list: typeof smaller, suffix: string) => list.find((e) => e.name.endsWith(suffix));
  assert.equal(find(bigger, "[a] accuracy")?.value, 0.09375);
  assert.equal(find(smaller, "[b] perplexity")?.value, 12.5);
  assert.ok(Math.abs(find(smaller, "[a] stepLatencyMs.p50 / calibration")!.value - 27.6 / 0.848) < 1e-9);
  assert.ok(Math.abs(find(bigger, "[a] trainTokensPerSecond x calibration")!.value - 6950 * 0.848) < 1e-9);
  assert.equal(find(smaller, "[a] peakTrainBytes")?.value, 31_421_296);
  assert.deepEqual(jsonOutPaths("out/bench.json"), {
    smaller: "out/bench.smaller.json",
    bigger: "out/bench.bigger.json",
  });
});

Deno.test("runCheck --update writes the new baseline, removes stale records, appends history", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = join(dir, "baselines");
    const results = join(dir, "results");
    await Deno.mkdir(base);
    await Deno.copyFile(POLICY_PATH, join(base, "policy.json"));
    await writeRecord(base, record("stale"));
    await writeRecord(results, record("a", (r) => (r.metrics.accuracy = 0.5)));
    await writeRecord(results, record("b"));

    await assert.rejects(runCheck({ baseline: base, results, update: true }), UsageError);
    const first = await runCheck({ baseline: base, results, update: true, reason: "new tokenizer" });
    assert.equal(first.exitCode, 0);
    assert.deepEqual(first.history?.runs, ["a", "b"]);
    assert.deepEqual(first.history?.removed, ["stale"]);
    const files = [...Deno.readDirSync(base)].map((e) => e.name).sort();
    assert.deepEqual(files, ["HISTORY.jsonl", "a.json", "b.json", "policy.json"]);
    assert.equal(JSON.parse(Deno.readTextFileSync(join(base, "a.json"))).metrics.accuracy, 0.5);

    // The new baseline now matches; a second update appends a second history line.
    const again = await runCheck({ baseline: base, results, jsonOut: join(dir, "gab.json") });
    assert.equal(again.exitCode, 0);
    assert.equal(again.result.compared, 2);
    assert.ok(Array.isArray(JSON.parse(Deno.readTextFileSync(join(dir, "gab.smaller.json")))));
    await runCheck({ baseline: base, results, update: true, reason: "second" });
    const history = Deno.readTextFileSync(join(base, "HISTORY.jsonl")).trim().split("\n")
      .map((l) => JSON.parse(l) as HistoryEntry);
    assert.deepEqual(history.map((h) => h.reason), ["new tokenizer", "second"]);
    assert.ok(!Number.isNaN(Date.parse(history[0].date)));
    assert.ok("commit" in history[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: exit 1 on a regression (with JSON written), 0 when clean, 2 on bad input", async () => {
  const dir = await Deno.makeTempDir();
  const cli = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env=PEFT_BENCH_DEBUG",
        "--allow-run=git",
        new URL("./check.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output().then((o) => ({
      code: o.code,
      out: new TextDecoder().decode(o.stdout),
      err: new TextDecoder().decode(o.stderr),
    }));
  try {
    const base = join(dir, "base");
    await writeRecord(base, record("a"));
    await writeRecord(join(dir, "same"), record("a"));
    await writeRecord(join(dir, "slow"), record("a", slower(3)));
    const common = ["--baseline", base, "--policy", POLICY_PATH];

    const bad = await cli([...common, "--results", join(dir, "slow"), "--json-out", join(dir, "gab.json")]);
    assert.equal(bad.code, 1, bad.err);
    assert.match(bad.out, /\| a \| stepLatencyMs\.p50 \/ calibration \|.*\*\*regression\*\*/);
    assert.match(bad.out, /check FAILED/);
    const smaller = JSON.parse(Deno.readTextFileSync(join(dir, "gab.smaller.json")));
    assert.ok(smaller.every((e: { value: unknown }) => typeof e.value === "number"));

    const ok = await cli([...common, "--results", join(dir, "same")]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /check passed: 1 run\(s\) compared/);

    const noResults = await cli(common);
    assert.equal(noResults.code, 2);
    assert.equal(noResults.err.trim().split("\n").length, 1);
    assert.match(noResults.err, /--results DIR is required/);
    const noPolicy = await cli(["--baseline", base, "--results", join(dir, "same")]);
    assert.equal(noPolicy.code, 2);
    assert.match(noPolicy.err, /policy file not found: .*policy\.json \(pass --policy FILE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
