/**
 * Run records: one JSON file per run (`<out>/<runId>.json`), written atomically, with a schema
 * version. The run id is derived from the config, so a rerun of the same config is recognised
 * (sweeps skip it) and the same config always lands in the same file.
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../models/io.ts";

/** Bumped whenever a field changes meaning. */
export const SCHEMA_VERSION = 1;

/** Everything that defines a run (and so its id). */
export interface RunConfig {
  task: "classify" | "retrieve" | "lm";
  dataset: string;
  /** Model path (folder or .bin); the embedded default when absent. */
  model: string;
  method: string;
  /** Method options after schema defaults (targets, rank, alpha, ...). */
  methodOptions: Record<string, unknown>;
  quant: { scheme: string; blockSize?: number; doubleQuant?: boolean; outlierThreshold?: number };
  /** LoftQ initialisation iterations (0: plain). */
  loftq: number;
  trainSize: number | null;
  trainPerClass: number | null;
  /** Dataset split seed (which examples form the nested train subsets). */
  splitSeed: number;
  seed: number;
  epochs: number;
  /** Update count; when set it overrides epochs. */
  steps: number | null;
  batchSize: number;
  gradAccum: number;
  lr: number;
  headLr: number;
  warmupRatio: number;
  schedule: "cosine" | "linear" | "constant";
  weightDecay: number;
  clipNorm: number;
  maxLength: number;
  pooling: "mean" | "last";
  temperature: number;
  evalEvery: number;
  maxEval: number | null;
  /** Retrieval: evaluate against at most this many documents (judged ones always included). */
  maxCorpus: number | null;
  backend: string;
  diagnostics: boolean;
}

/** Latency summary in milliseconds. */
export interface LatencyStats {
  p50: number;
  p95: number;
  mean: number;
  n: number;
}

/** Memory in bytes; `computed` names the parts derived rather than measured. */
export interface MemoryReport {
  peakTrainBytes: number;
  peakInferBytes: number;
  breakdown: { frozenWeights: number; trainable: number; optimizerState: number; activations: number };
  computed: string[];
  rssBytes: number;
  /** What "peak" measures on this backend (tfjs tensor bytes; GPU memory on webgpu). */
  source: string;
}

/** One run, as stored on disk. */
export interface RunRecord {
  schemaVersion: number;
  runId: string;
  /** Short human label (method, targets, rank, quant, train size, seed). */
  name: string;
  status: "success" | "failed";
  error?: string;
  config: RunConfig;
  /** Task metrics (accuracy, macroF1, mrr, recall@k, ndcg@k, perplexity, ...). */
  metrics: Record<string, number>;
  /** Extra structured results (per-class F1, confusion matrix). */
  details?: Record<string, unknown>;
  /** Per-item results (per example / per query / per document), for paired statistics. */
  perItem: Record<string, unknown>[];
  curve: { step: number; loss: number; lr: number; evalMetric?: number }[];
  timing: {
    trainSeconds: number;
    /** Test-set evaluation (model compute plus metric computation). */
    evalSeconds?: number;
    totalSeconds: number;
    stepLatencyMs: LatencyStats;
    trainTokensPerSecond: number;
    inferLatencyMs: LatencyStats;
    /** Same-process calibration kernel (median ms of a 512^3 matmul), to normalise latencies. */
    calibrationMs: number;
    /** Inference latency per item of the frozen model before quantization (quantized runs). */
    inferLatencyUnquantizedMs?: LatencyStats;
    /** The same right after quantizing the frozen base: the difference is the dequantization's cost. */
    inferLatencyQuantizedMs?: LatencyStats;
  };
  memory: MemoryReport;
  size: {
    trainableParams: number;
    totalParams: number;
    adapterBytes: number;
    frozenBytes: number;
    bitsPerFrozenParam: number;
  };
  /** The frozen base's decoder linears: scheme, real stored bits per parameter, dequantization cost. */
  quant?: {
    scheme: string;
    blockSize?: number;
    doubleQuant?: boolean;
    loftq: number;
    /** Stored bytes of the decoder's linear weights (packed codes and constants). */
    linearBytes: number;
    bitsPerParam: number;
    /** p50 inference latency per item, quantized minus fp32, on the frozen model (ms). */
    dequantCostMs: number | null;
  };
  /** Adapter diagnostics (spectra, effective rank, entanglement), when computed. */
  diagnostics?: Record<string, unknown>;
  env: {
    deno: string;
    tfjs: string;
    backend: string;
    backendDetail: string;
    cpu: string;
    gitCommit: string | null;
    gitDirty: boolean | null;
    startTime: string;
    hostname: string;
  };
}

/** Canonical JSON (sorted keys) so equal configs hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Run id: a readable prefix plus 12 hex digits of SHA-256 over the canonical config. */
export async function runIdOf(config: RunConfig): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(config)));
  const hex = [...new Uint8Array(digest)].slice(0, 6).map((b) => b.toString(16).padStart(2, "0")).join("");
  const slug = `${config.task}-${config.method}-s${config.seed}`.replace(/[^a-z0-9.+-]/gi, "_");
  return `${slug}-${hex}`;
}

/** Human label of a run. */
export function runName(c: RunConfig): string {
  const o = c.methodOptions;
  const parts = [c.method];
  if (o.targets) parts.push(String(o.targets));
  if (o.rank !== undefined) parts.push(`r${o.rank}`);
  if (c.quant.scheme !== "none") parts.push(c.quant.scheme + (c.quant.doubleQuant ? "+dq" : ""));
  if (c.trainPerClass) parts.push(`${c.trainPerClass}/class`);
  else if (c.trainSize) parts.push(`n${c.trainSize}`);
  parts.push(`seed${c.seed}`);
  return parts.join(" ");
}

/** Where a run's record lives. */
export function recordPath(dir: string, runId: string): string {
  return join(dir, `${runId}.json`);
}

/** Write a record atomically (temp file + rename): readers never see half a file. */
export async function writeRecord(dir: string, record: RunRecord): Promise<string> {
  const path = recordPath(dir, record.runId);
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
  return path;
}

/** Read every record of a folder (skipping temp files), with a clear error naming a bad file. */
export async function readRecords(dir: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(`results folder not found: ${dir}`);
    throw err;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!e.isFile || !e.name.endsWith(".json") || e.name.startsWith(".")) continue;
    const path = join(dir, e.name);
    let rec: RunRecord;
    try {
      rec = JSON.parse(await Deno.readTextFile(path));
    } catch {
      throw new Error(`${path}: not valid JSON (a run record was damaged; delete it and rerun)`);
    }
    if (typeof rec !== "object" || rec === null || rec.schemaVersion === undefined || !rec.runId) continue;
    if (rec.schemaVersion !== SCHEMA_VERSION) {
      throw new Error(
        `${path}: schema version ${rec.schemaVersion}, this peft-bench reads ${SCHEMA_VERSION}`,
      );
    }
    out.push(rec);
  }
  return out;
}
