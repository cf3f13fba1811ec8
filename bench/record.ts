/**
 * Run records: one JSON file per run (`<out>/<runId>.json`), written atomically, with a schema
 * version. The run id is derived from the config, so a rerun of the same config is recognised
 * (sweeps skip it) and the same config always lands in the same file.
 *
 * Records are input: they come from other machines, shards and colleagues. Every reader (check,
 * merge, export-csv, report, sweep resume) goes through {@link parseRecord}, which validates the
 * schema and types and demands a run id of safe characters that equals the file's name, so a run
 * id can never steer a write or delete outside its folder ({@link recordPath} refuses one too).
 * @module
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../models/util/io.ts";
import { InputError } from "../models/util/args.ts";
import type { QuantConfig } from "../methods/quant/config.ts";
import type { Forgetting } from "./forgetting.ts";
import type { TrivialBaseline } from "./tasks/types.ts";
import type { TokenizerCoverage } from "./tasks/coverage.ts";
import { type Direction, metricDirection, primaryMetricOf } from "./metrics/table.ts";

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
  /** The `--quant` scheme and its options as given (`--block-size`, `--double-quant`, `--quant-opt`). */
  quant: { scheme: string } & Partial<Omit<QuantConfig, "scheme">>;
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
  /**
   * Classification: which `maxEval` items are scored: a seeded stratified sample, or (absent: the
   * default) the first N of the split.
   */
  maxEvalMode?: "stratified";
  /** Retrieval: evaluate against at most this many documents (judged ones always included). */
  maxCorpus: number | null;
  backend: string;
  diagnostics: boolean;
  /** Tokenizer path from `--tokenizer` (absent: the one beside the model). */
  tokenizer?: string;
  /** Text file from `--forgetting-text` (absent: the held-out generic text of `bench/forgetting.ts`). */
  forgettingText?: string;
  /** Dataset options from `--data-opt`, parsed by the dataset's schema (absent: none given). */
  dataOptions?: Record<string, unknown>;
  /** `--grad-checkpoint`: activation checkpointing per decoder layer (absent: off). */
  gradCheckpoint?: boolean;
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
  /**
   * The task's primary metric (bench/metrics/table.ts) and its direction, as the writer saw them.
   * Optional: records written before these fields existed lack them; read {@link recordPrimary}.
   */
  primaryMetric?: string;
  /** Whether higher or lower values of `primaryMetric` are better. */
  primaryDirection?: Direction;
  /** Extra structured results (per-class F1, confusion matrix). */
  details?: Record<string, unknown>;
  /** Per-item results (per example / per query / per document), for paired statistics. */
  perItem: Record<string, unknown>[];
  curve: { step: number; loss: number; lr: number; evalMetric?: number }[];
  timing: {
    trainSeconds: number;
    /** Test-set evaluation (model compute plus metric computation). */
    evalSeconds?: number;
    /** Tokens the evaluation's forward passes read per second of evalSeconds. */
    evalTokensPerSecond?: number;
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
  /** NLL per token on held-out generic text before and after training (`bench/forgetting.ts`). */
  forgetting?: Forgetting;
  /**
   * Trivial baselines the task scored on the run's own evaluation items with the task's measures
   * (retrieval: BM25 and the random-ranking expectation; LM: the add-one unigram model). Optional:
   * classification's majority class is derived from the per-item labels (reports/trivial.ts), and
   * older records lack the field.
   */
  trivial?: TrivialBaseline[];
  /** Tokenizer coverage per dataset split, measured where the task tokenizes (bench/tasks/coverage.ts). */
  tokenizerCoverage?: TokenizerCoverage;
  env: {
    deno: string;
    tfjs: string;
    backend: string;
    backendDetail: string;
    /** CPU model and logical cores (`AMD EPYC 7B13 x2`); `unknown CPU xN` when it could not be read. */
    cpu: string;
    /** Native backend only: the core OpenBLAS picked its kernels for, and its thread count. */
    blas?: { core: string | null; threads: number | null };
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
  const slug = `${config.task}-${config.method}-s${config.seed}`.replace(/[^A-Za-z0-9._-]/g, "_");
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

/**
 * What a run id may be: it names a file, so 1 to 128 ASCII letters, digits, `.`, `_` or `-`,
 * starting with a letter or digit (no separator, no leading dot), and never containing `..`.
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Why `runId` cannot name a record file, or null when it can. */
export function unsafeRunId(runId: unknown): string | null {
  if (typeof runId !== "string") {
    return `run id must be a string, not ${runId === null ? "null" : typeof runId}`;
  }
  if (RUN_ID_PATTERN.test(runId) && !runId.includes("..")) return null;
  return `run id ${quoteForError(runId)} is not a safe file name (1-128 of A-Z a-z 0-9 . _ -, ` +
    `starting with a letter or digit, no '..')`;
}

/** A value quoted for a one-line message: JSON-escaped (no raw newlines) and cut at 80 characters. */
function quoteForError(text: string): string {
  const q = JSON.stringify(text);
  return q.length > 80 ? `${q.slice(0, 77)}..."` : q;
}

/** Where a run's record lives; an unsafe run id (a path, `..`, a separator) is an InputError. */
export function recordPath(dir: string, runId: string): string {
  const unsafe = unsafeRunId(runId);
  if (unsafe) throw new InputError(`${unsafe}; a run id names its record file in ${dir} and is never a path`);
  return join(dir, `${runId}.json`);
}

/** Write a record atomically (temp file + rename): readers never see half a file. */
export async function writeRecord(dir: string, record: RunRecord): Promise<string> {
  const path = recordPath(dir, record.runId);
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
  return path;
}

/** JSON writes NaN and Infinity as null: a measured number reads back null as NaN. */
const measured = z.number().nullable().transform((v) => v ?? NaN);
const num = z.number();
const latency = z.looseObject({ p50: measured, p95: measured, mean: measured, n: num });

/** The run config: the fields the readers use are required, the rest typed when present. */
const ConfigSchema = z.looseObject({
  task: z.enum(["classify", "retrieve", "lm"]),
  dataset: z.string(),
  model: z.string(),
  method: z.string(),
  methodOptions: z.record(z.string(), z.unknown()),
  quant: z.looseObject({
    scheme: z.string(),
    blockSize: num.optional(),
    doubleQuant: z.boolean().optional(),
    outlierThreshold: num.optional(),
  }),
  trainSize: num.nullable(),
  trainPerClass: num.nullable(),
  splitSeed: num,
  seed: num,
  epochs: num,
  steps: num.nullable(),
  lr: num,
  backend: z.string(),
  loftq: num.optional(),
  batchSize: num.optional(),
  gradAccum: num.optional(),
  headLr: num.optional(),
  warmupRatio: num.optional(),
  schedule: z.string().optional(),
  weightDecay: num.optional(),
  clipNorm: num.optional(),
  maxLength: num.optional(),
  pooling: z.string().optional(),
  temperature: num.optional(),
  evalEvery: num.optional(),
  maxEval: num.nullable().optional(),
  maxEvalMode: z.literal("stratified").optional(),
  maxCorpus: num.nullable().optional(),
  diagnostics: z.boolean().optional(),
  tokenizer: z.string().optional(),
  forgettingText: z.string().optional(),
  dataOptions: z.record(z.string(), z.unknown()).optional(),
  gradCheckpoint: z.boolean().optional(),
});

/**
 * Schema of a stored run record (schema version {@link SCHEMA_VERSION}); objects keep keys they do
 * not name, so nothing a newer writer adds is lost on a rewrite (merge, check --update).
 */
export const RunRecordSchema = z.looseObject({
  schemaVersion: z.literal(SCHEMA_VERSION),
  runId: z.string(),
  name: z.string(),
  status: z.enum(["success", "failed"]),
  error: z.string().optional(),
  config: ConfigSchema,
  metrics: z.record(z.string(), measured),
  primaryMetric: z.string().optional(),
  primaryDirection: z.enum(["higher", "lower"]).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  perItem: z.array(z.record(z.string(), z.unknown())),
  curve: z.array(z.looseObject({ step: num, loss: measured, lr: measured, evalMetric: measured.optional() })),
  timing: z.looseObject({
    trainSeconds: measured,
    evalSeconds: measured.optional(),
    evalTokensPerSecond: measured.optional(),
    totalSeconds: measured,
    stepLatencyMs: latency,
    trainTokensPerSecond: measured,
    inferLatencyMs: latency,
    calibrationMs: measured,
    inferLatencyUnquantizedMs: latency.optional(),
    inferLatencyQuantizedMs: latency.optional(),
  }),
  memory: z.looseObject({
    peakTrainBytes: num,
    peakInferBytes: num,
    breakdown: z.looseObject({
      frozenWeights: num,
      trainable: num,
      optimizerState: num,
      activations: measured,
    }),
    computed: z.array(z.string()),
    rssBytes: num,
    source: z.string(),
  }),
  size: z.looseObject({
    trainableParams: num,
    totalParams: num,
    adapterBytes: num,
    frozenBytes: num,
    bitsPerFrozenParam: measured,
  }),
  quant: z.looseObject({
    scheme: z.string(),
    blockSize: num.optional(),
    doubleQuant: z.boolean().optional(),
    loftq: num,
    linearBytes: num,
    bitsPerParam: measured,
    dequantCostMs: num.nullable(),
  }).optional(),
  diagnostics: z.record(z.string(), z.unknown()).optional(),
  forgetting: z.object({
    text: z.string(),
    tokens: num,
    nllBefore: num,
    nllAfter: num,
    delta: num,
  }).optional(),
  trivial: z.array(z.looseObject({
    name: z.string(),
    metrics: z.record(z.string(), measured),
    note: z.string().optional(),
  })).optional(),
  tokenizerCoverage: z.record(
    z.string(),
    z.looseObject({
      texts: num,
      tokens: num,
      words: num,
      chars: num,
      unknownTokens: num,
      byteFallbackTokens: num,
      unknownShare: num,
      byteFallbackShare: num,
      tokensPerWord: num,
      tokensPerChar: num,
      truncated: num.nullable(),
      truncatedShare: num.nullable(),
      maxLength: num.nullable(),
    }),
  ).optional(),
  env: z.looseObject({
    deno: z.string(),
    tfjs: z.string(),
    backend: z.string(),
    backendDetail: z.string(),
    cpu: z.string(),
    blas: z.looseObject({ core: z.string().nullable(), threads: num.nullable() }).optional(),
    gitCommit: z.string().nullable(),
    gitDirty: z.boolean().nullable(),
    startTime: z.string(),
    hostname: z.string(),
  }),
});

/** Whether parsed JSON claims to be a run record (other JSON files, such as policy.json, are not). */
function claimsRecord(raw: unknown): boolean {
  return typeof raw === "object" && raw !== null && !Array.isArray(raw) &&
    ("schemaVersion" in raw || "runId" in raw);
}

/** The one-line error for a record file that fails validation, naming the file and the fix. */
function badRecord(path: string, problem: string): InputError {
  return new InputError(
    `${path}: ${problem} (not a valid run record: delete or replace the file, then rerun)`,
  );
}

/**
 * Validate parsed JSON read from `path` as a run record: schema, types, and a safe run id equal to
 * the file's name without `.json`. Null when the JSON does not claim to be a record (no
 * `schemaVersion` and no `runId`); any other defect is one InputError naming the file. This is
 * the one validator every reader of records uses.
 */
export function parseRecord(raw: unknown, path: string): RunRecord | null {
  if (!claimsRecord(raw)) return null;
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (version !== SCHEMA_VERSION && typeof version === "number") {
    throw new InputError(
      `${path}: schema version ${version}, this peft-bench reads ${SCHEMA_VERSION} (use the peft-bench that wrote it)`,
    );
  }
  const unsafe = unsafeRunId((raw as { runId?: unknown }).runId);
  if (unsafe) throw badRecord(path, unsafe);
  const runId = (raw as { runId: string }).runId;
  const file = basename(path);
  if (file !== `${runId}.json`) {
    throw badRecord(
      path,
      `run id ${quoteForError(runId)} does not match the file name ${quoteForError(file)}`,
    );
  }
  const parsed = RunRecordSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length ? issue.path.map(String).join(".") : "(top level)";
    throw badRecord(path, `${at}: ${issue.message.split("\n")[0]}`);
  }
  return parsed.data as unknown as RunRecord;
}

/**
 * Read and validate one record file: null when the file is missing or is JSON that does not claim
 * to be a record; an InputError naming the file when it is damaged or invalid.
 */
export async function readRecordFile(path: string): Promise<RunRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new InputError(`${path}: cannot read (${(err as Error).message.split("\n")[0]})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InputError(`${path}: not valid JSON (a run record was damaged; delete it and rerun)`);
  }
  return parseRecord(raw, path);
}

/**
 * Read every record of a folder, validated (see {@link parseRecord}); plain `.json` files only
 * (no temp or hidden files, no symlinks, no subfolders), sorted by name. JSON files that are not
 * records (policy.json) are skipped; a bad record is one InputError naming it.
 */
export async function readRecords(dir: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new InputError(`results folder not found: ${dir}`);
    if (err instanceof Deno.errors.NotADirectory) throw new InputError(`not a folder: ${dir}`);
    throw err;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!e.isFile || !e.name.endsWith(".json") || e.name.startsWith(".")) continue;
    const record = await readRecordFile(join(dir, e.name));
    if (record) out.push(record);
  }
  return out;
}

/**
 * A record's primary metric and direction: the stored fields when the writer set them, else
 * derived from the metric table for the record's task (records of older writers, the committed
 * baselines). A stored name the table knows always takes the table's direction.
 */
export function recordPrimary(record: Pick<RunRecord, "config" | "primaryMetric" | "primaryDirection">): {
  name: string;
  direction: Direction;
} {
  if (record.primaryMetric !== undefined) {
    const direction = metricDirection(record.primaryMetric) ?? record.primaryDirection;
    if (direction) return { name: record.primaryMetric, direction };
  }
  const spec = primaryMetricOf(record.config.task);
  return { name: spec.name, direction: spec.direction };
}
