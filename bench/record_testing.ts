/**
 * TEST FIXTURES ONLY: a complete, valid run record (the numbers of a real smoke run: `deno task
 * bench --steps 30 --train-size 64 --max-eval 32 --batch-size 8` on a small model, native backend,
 * per-item results left out) for the tests of the readers of records (check, merge, export-csv,
 * sweep resume, report), and a helper that writes raw JSON where a record file would be.
 * @module
 */
import { join } from "node:path";
import { type RunConfig, type RunRecord, SCHEMA_VERSION } from "./record.ts";

/** A complete run config (classification, LoRA on q and v, rank 8). */
export function testConfig(over: Partial<RunConfig> = {}): RunConfig {
  return {
    task: "classify",
    dataset: "wordnet-lex",
    model: "default",
    method: "lora",
    methodOptions: { targets: "q+v", rank: 8, alpha: 16 },
    quant: { scheme: "none" },
    loftq: 0,
    trainSize: 64,
    trainPerClass: null,
    splitSeed: 0,
    seed: 0,
    epochs: 3,
    steps: 30,
    batchSize: 8,
    gradAccum: 1,
    lr: 0.002,
    headLr: 0.005,
    warmupRatio: 0.1,
    schedule: "cosine",
    weightDecay: 0,
    clipNorm: 1,
    maxLength: 48,
    pooling: "mean",
    temperature: 0.05,
    evalEvery: 0,
    maxEval: 32,
    maxCorpus: 2000,
    backend: "auto",
    diagnostics: false,
    ...over,
  };
}

/** A complete, valid record; `edit` changes it in place before it is returned. */
export function testRecord(
  runId = "classify-lora-s0-1f1624262990",
  edit: (r: RunRecord) => void = () => {},
): RunRecord {
  const r: RunRecord = {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: "lora q+v r8 n64 seed0",
    status: "success",
    config: testConfig(),
    metrics: { accuracy: 0.09375, macroF1: 0.006593406593406593 },
    perItem: [],
    curve: [{ step: 0, loss: 2.3, lr: 0.002 }],
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
      cpu: "AMD EPYC x2",
      blas: { core: "Haswell", threads: 2 },
      gitCommit: null,
      gitDirty: null,
      startTime: "2026-01-01T00:00:00.000Z",
      hostname: "vm",
    },
  };
  edit(r);
  return r;
}

/** Write `value` as JSON to `dir/file` (creating `dir`), bypassing every check: hostile input. */
export async function writeRawJson(dir: string, file: string, value: unknown): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, file);
  await Deno.writeTextFile(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

/** Every file under `dir`, as paths relative to it, sorted (to prove nothing else was written). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(rel);
      else out.push(rel);
    }
  };
  await walk("");
  return out.sort();
}
