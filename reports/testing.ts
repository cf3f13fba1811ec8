/**
 * TEST FIXTURES ONLY: synthetic run records for the report's tests and benchmark. Nothing here
 * was measured; quality follows a made-up additive model (method, log rank, targets, train
 * size, quantization) plus seeded noise, so the statistics have real effects to find.
 * @module
 */
import { type RunConfig, runIdOf, runName, type RunRecord, SCHEMA_VERSION } from "../bench/record.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { hashString, Rng } from "../models/util/rng.ts";
import { join } from "node:path";
import { updateDiagnostics } from "../methods/diagnostics/spectrum.ts";
import { entanglementProfile } from "../methods/diagnostics/entanglement.ts";
import { fitLogLaw } from "../methods/diagnostics/attention_entropy.ts";
import { parseSweep } from "../bench/sweep_plan.ts";
import type { SweepLevels } from "./data.ts";

/** Grid of the synthetic study. */
export interface FixtureOptions {
  /** Root seed of every draw (default 1). */
  seed?: number;
  tasks?: Array<RunConfig["task"]>;
  /** Methods with targets and rank (default lora, dora). */
  rankedMethods?: string[];
  /** Methods without rank (default ia3). */
  unrankedMethods?: string[];
  ranks?: number[];
  targets?: string[];
  quants?: string[];
  trainSizes?: number[];
  seeds?: number;
  /** Items (examples / queries / documents) per run (default 40). */
  items?: number;
  /** Curve points per run (default 20). */
  curvePoints?: number;
  /** Failed runs added per task (default 1). */
  failures?: number;
  /** Stop after this many records (grid order). */
  limit?: number;
  /** Runs carry synthetic `--diagnostics` output (default false). */
  diagnostics?: boolean;
}

const DATASETS: Record<RunConfig["task"], string> = {
  classify: "fixture-topics",
  retrieve: "fixture-queries",
  lm: "fixture-text",
};

/** A complete RunConfig with fixture defaults. */
export function fixtureConfig(over: Partial<RunConfig> = {}): RunConfig {
  return {
    task: "classify",
    dataset: DATASETS[over.task ?? "classify"],
    model: "fixture-model",
    method: "lora",
    methodOptions: { targets: "qv", rank: 8, alpha: 16 },
    quant: { scheme: "none" },
    loftq: 0,
    trainSize: 64,
    trainPerClass: null,
    splitSeed: 0,
    seed: 0,
    epochs: 3,
    steps: null,
    batchSize: 8,
    gradAccum: 1,
    lr: 1e-3,
    headLr: 1e-3,
    warmupRatio: 0.1,
    schedule: "cosine",
    weightDecay: 0,
    clipNorm: 1,
    maxLength: 128,
    pooling: "mean",
    temperature: 0.05,
    evalEvery: 0,
    maxEval: null,
    maxCorpus: null,
    backend: "cpu",
    diagnostics: false,
    ...over,
  };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** Side of the fixture's square layers: 16 = 2^4, so entanglement profiles have 7 cuts. */
const DIAG_DIM = 16;
const DIAG_LENGTHS = [4, 8, 16, 32, 64];

/** Layer names a fixture run adapts (2 decoder layers). */
function fixtureLayers(targets: unknown): string[] {
  const modules = targets === "qv" ? ["q", "v"] : targets === "all" ? ["q", "k", "v", "o"] : [];
  return [0, 1].flatMap((i) => modules.map((m) => `layers.${i}.attn.${m}`));
}

/**
 * Synthetic `--diagnostics` output in the harness's shape. Updates are real matrices (rank-r
 * B A with decaying column scales for ranked methods, dense for full fine-tuning) run through
 * the real spectrum and entanglement code; attention entropy follows S = 0.2 + b ln l with a
 * method-dependent slope change, fitted by the real fitLogLaw.
 */
function fixtureDiagnostics(config: RunConfig, rng: Rng): Record<string, unknown> {
  const o = config.methodOptions;
  const rank = typeof o.rank === "number" ? o.rank : null;
  const full = config.method === "full";
  const names = full ? fixtureLayers("all") : rank === null ? [] : fixtureLayers(o.targets);
  const layers: Record<string, unknown> = {};
  for (const name of names) {
    const r = Math.min(rank ?? DIAG_DIM, DIAG_DIM);
    const b = rng.fork(`${name}|b`).normalArray(DIAG_DIM * r);
    const a = rng.fork(`${name}|a`).normalArray(r * DIAG_DIM);
    const dW = new Float64Array(DIAG_DIM * DIAG_DIM);
    for (let i = 0; i < DIAG_DIM; i++) {
      for (let k = 0; k < r; k++) {
        const bik = b[i * r + k] * Math.exp(-k / Math.max(1, r / 2));
        for (let j = 0; j < DIAG_DIM; j++) dW[i * DIAG_DIM + j] += bik * a[k * DIAG_DIM + j];
      }
    }
    const w = rng.fork(`${name}|w`).normalArray(DIAG_DIM * DIAG_DIM);
    const shape = [DIAG_DIM, DIAG_DIM] as const;
    layers[name] = {
      ...updateDiagnostics(dW, w, shape, rank ?? DIAG_DIM),
      entanglement: entanglementProfile(dW, shape),
    };
  }
  const shift: Record<string, number> = { lora: -0.01, dora: -0.015, ia3: 0.01, full: -0.08 };
  const probe = (slope: number, label: string) => {
    const noise = rng.fork(label);
    const perLayer = [0, 1].map((layer) => {
      const entropy = DIAG_LENGTHS.map((l) =>
        0.2 + (slope + 0.05 * layer) * Math.log(l) + 0.01 * noise.normal()
      );
      return { layer, lengths: DIAG_LENGTHS, entropy, fit: fitLogLaw(DIAG_LENGTHS, entropy) };
    });
    const entropy = DIAG_LENGTHS.map((_, i) => (perLayer[0].entropy[i] + perLayer[1].entropy[i]) / 2);
    return {
      perLayer,
      overall: { lengths: DIAG_LENGTHS, entropy, fit: fitLogLaw(DIAG_LENGTHS, entropy) },
      sequences: DIAG_LENGTHS.map(() => 8),
    };
  };
  const frozen = probe(0.7, "frozen");
  const adapted = probe(0.7 + (shift[config.method] ?? 0) - 0.01 * Math.log2(rank ?? 4), "adapted");
  return {
    nominalRank: rank,
    layers,
    attention: {
      frozen,
      adapted,
      deltaB: adapted.overall.fit.b - frozen.overall.fit.b,
      deltaBPerLayer: adapted.perLayer.map((c, i) => c.fit.b - frozen.perLayer[i].fit.b),
    },
  };
}
const MiB = 1024 * 1024;

/** Latent quality in about [0, 1] of a config (before noise). */
function latent(c: RunConfig): number {
  const o = c.methodOptions;
  const methodEffect: Record<string, number> = { lora: 0, dora: 0.015, ia3: -0.05 };
  const rank = typeof o.rank === "number" ? o.rank : 4;
  const targets = o.targets === "all" ? 0.03 : 0;
  const quant: Record<string, number> = { none: 0, nf4: -0.01, fp4: -0.035, int8: -0.003 };
  return 0.62 + (methodEffect[c.method] ?? 0) + 0.02 * Math.log2(rank / 4) + targets +
    0.06 * Math.log2((c.trainSize ?? 64) / 64) / 2 + (quant[c.quant.scheme] ?? 0);
}

/** One synthetic record: metrics, per-item scores, curve, timing, memory and size. */
export async function fixtureRecord(
  config: RunConfig,
  rng: Rng,
  items = 40,
  curvePoints = 20,
): Promise<RunRecord> {
  const q = latent(config) + 0.012 * rng.normal();
  // Item difficulty is fixed per task (not per run), so per-item scores are paired across runs.
  const difficulty = new Rng(hashTask(config.task)).normalArray(items, 0.2);
  const perItem: Record<string, unknown>[] = [];
  const metrics: Record<string, number> = {};
  if (config.task === "classify") {
    let correct = 0;
    for (let i = 0; i < items; i++) {
      const p = clamp(q - difficulty[i] + 0.1 * rng.normal(), 0.02, 0.98);
      const ok = rng.next() < p ? 1 : 0;
      correct += ok;
      perItem.push({ id: `ex-${i}`, correct: ok, confidence: Number(p.toFixed(3)) });
    }
    metrics.accuracy = clamp(q, 0, 1);
    metrics.macroF1 = clamp(q - 0.02 + 0.005 * rng.normal(), 0, 1);
    metrics.itemAccuracy = correct / items;
  } else if (config.task === "retrieve") {
    let s = 0, s10 = 0;
    for (let i = 0; i < items; i++) {
      const rr = clamp(q - 0.1 - difficulty[i] + 0.08 * rng.normal(), 0, 1);
      const nd = clamp(rr + 0.05 + 0.03 * rng.normal(), 0, 1);
      s += rr;
      s10 += nd;
      perItem.push({ id: `q${i}`, mrr: rr, "ndcg@10": nd });
    }
    metrics.mrr = s / items;
    metrics["ndcg@10"] = s10 / items;
    metrics["recall@10"] = clamp(q + 0.15, 0, 1);
  } else {
    const ppl = 40 * Math.exp(-1.2 * q) + 0.2 * rng.normal();
    for (let i = 0; i < items; i++) {
      const p = Math.max(1.5, ppl * Math.exp(difficulty[i] + 0.05 * rng.normal()));
      perItem.push({ id: `doc-${i}`, perplexity: p, tokens: 200 + i });
    }
    metrics.perplexity = ppl;
    metrics.bitsPerByte = Math.log2(ppl) / 4;
  }
  const steps = 100;
  const curve = Array.from({ length: curvePoints }, (_, i) => {
    const step = Math.round((i + 1) * steps / curvePoints);
    return {
      step,
      loss: 2.5 * Math.exp(-step / 40) + (1 - q) + 0.03 * rng.normal(),
      lr: config.lr * Math.cos((Math.PI / 2) * step / steps),
      ...(i % 5 === 4 ? { evalMetric: q * (1 - Math.exp(-step / 30)) } : {}),
    };
  });
  const rank = typeof config.methodOptions.rank === "number" ? config.methodOptions.rank : 1;
  const trainable = config.method === "ia3"
    ? 12_288
    : rank * 16_384 * (config.methodOptions.targets === "all" ? 3.5 : 1);
  const bits: Record<string, number> = { none: 32, nf4: 4.127, fp4: 4.127, int8: 8 };
  const frozenParams = 15_000_000;
  const frozen = frozenParams * (bits[config.quant.scheme] ?? 32) / 8;
  const activations = 40 * MiB * (config.batchSize / 8) * (1 + 0.02 * rng.normal());
  const lat = (base: number) => {
    const p50 = base * (1 + 0.05 * rng.normal());
    return { p50, p95: p50 * 1.3, mean: p50 * 1.08, n: 50 };
  };
  const dequant = config.quant.scheme === "none" ? 1 : 1.25;
  const runId = await runIdOf(config);
  // Forgetting grows with the update's capacity (rank, targets) and is 0 for frozen, so quality
  // and forgetting trade off; its own stream keeps every other draw where it was.
  const fRng = rng.fork("forgetting");
  const fBase: Record<string, number> = { lora: 0.02, dora: 0.017, ia3: 0.004, full: 0.08, frozen: 0 };
  const delta = config.method === "frozen" ? 0 : (fBase[config.method] ?? 0.02) *
      (1 + 0.5 * Math.log2(rank / 4 + 0.75)) * (config.methodOptions.targets === "all" ? 1.5 : 1) +
    0.002 * fRng.normal();
  const nllBefore = 3.2 + ({ nf4: 0.02, fp4: 0.05, int8: 0.002 }[config.quant.scheme] ?? 0);
  const quant = fixtureQuant(config.quant.scheme, bits[config.quant.scheme] ?? 32, frozenParams);
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: runName(config),
    status: "success",
    config,
    metrics,
    details: config.task === "classify"
      ? {
        // The shapes the classify task writes (bench/tasks/classify.ts).
        perClass: ["world", "sports", "business", "science"].map((label, i) => ({
          label,
          precision: clamp(q + 0.03 * (i - 1.5), 0, 1),
          recall: clamp(q - 0.02 * (i - 1.5), 0, 1),
          f1: clamp(q, 0, 1),
          support: 10,
        })),
        confusion: {
          labels: ["world", "sports", "business", "science"],
          matrix: [[8, 1, 1, 0], [1, 7, 1, 1], [0, 2, 7, 1], [1, 1, 1, 7]],
        },
      }
      : undefined,
    ...(config.diagnostics ? { diagnostics: fixtureDiagnostics(config, rng.fork("diagnostics")) } : {}),
    forgetting: { text: "sotu-test", tokens: 2048, nllBefore, nllAfter: nllBefore + delta, delta },
    quant,
    perItem,
    curve,
    timing: {
      trainSeconds: (30 + trainable / 8000) * ((config.trainSize ?? 64) / 64) * dequant *
        (1 + 0.05 * rng.normal()),
      totalSeconds: 0,
      stepLatencyMs: lat(120 * dequant),
      trainTokensPerSecond: 900 / dequant,
      inferLatencyMs: lat(15 * dequant),
      calibrationMs: 4.2,
      inferLatencyUnquantizedMs: config.quant.scheme === "none" ? undefined : lat(15),
    },
    memory: {
      peakTrainBytes: frozen + trainable * 16 + activations,
      peakInferBytes: frozen + trainable * 4 + activations / 4,
      breakdown: {
        frozenWeights: frozen,
        trainable: trainable * 4,
        optimizerState: trainable * 8,
        activations,
      },
      computed: ["optimizerState"],
      rssBytes: 500 * MiB,
      source: "tfjs tensor bytes (fixture)",
    },
    size: {
      trainableParams: Math.round(trainable),
      totalParams: frozenParams + Math.round(trainable),
      adapterBytes: Math.round(trainable * 4),
      frozenBytes: frozen,
      bitsPerFrozenParam: bits[config.quant.scheme] ?? 32,
    },
    env: {
      deno: "2.9.6",
      tfjs: "4.22.0",
      backend: config.backend,
      backendDetail: "fixture",
      cpu: "Fixture CPU @ 0 GHz",
      gitCommit: "0000000000000000000000000000000000000000",
      gitDirty: false,
      startTime: new Date(Date.UTC(2025, 0, 1) + config.seed * 60_000).toISOString(),
      hostname: "fixture-host",
    },
  };
}

/** Relative weight error of round-to-nearest schemes on the fixture's layers (typical magnitudes). */
const FIXTURE_QUANT_ERROR: Record<string, number> = { nf4: 0.095, fp4: 0.115, int8: 0.0045 };

/**
 * The record's quantization figures in the harness's shape (bench/frozen_base.ts quantSummary,
 * methods/quant/report.ts quantLayerReport, output errors of bench/run.ts): per layer of 2 decoder
 * layers, a weight error and an output error that depend on the scheme and layer only (the base
 * and the calibration batch are fixed), as for round-to-nearest schemes.
 */
function fixtureQuant(scheme: string, bitsPerParam: number, params: number): RunRecord["quant"] {
  const base = {
    scheme,
    loftq: 0,
    linearBytes: params * bitsPerParam / 8,
    bitsPerParam,
    dequantCostMs: null,
  };
  const e = FIXTURE_QUANT_ERROR[scheme];
  if (scheme === "none" || e === undefined) return base;
  const names = [0, 1].flatMap((i) =>
    ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"].map((m) => `layers.${i}.${m}`)
  );
  const layers: Record<string, Record<string, unknown>> = {};
  for (const name of names) {
    const rng = new Rng(hashString(`${scheme}|${name}`));
    const relativeError = e * (1 + 0.1 * rng.normal());
    layers[name] = {
      scheme,
      bitsPerParam,
      relativeError,
      calibrationRows: 0,
      quantizeMs: 2 + rng.next(),
      outlierShare: null,
      forwardCalls: null,
      outputRelativeError: relativeError * (0.8 + 0.1 * rng.normal()),
    };
  }
  const all = Object.values(layers);
  const mean = (k: string) => all.reduce((s, l) => s + (l[k] as number), 0) / all.length;
  const figures = {
    ...base,
    layers,
    meanRelativeError: mean("relativeError"),
    maxRelativeError: Math.max(...all.map((l) => l.relativeError as number)),
    outlierShare: null,
    calibrationRows: 0,
    quantizeMs: mean("quantizeMs") * all.length,
    meanOutputRelativeError: mean("outputRelativeError"),
  };
  return figures;
}

function hashTask(task: string): number {
  return [...task].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
}

/** A failed run as the bench writes it: error text, no metrics. */
export async function failedRecord(config: RunConfig, error: string): Promise<RunRecord> {
  const rec = await fixtureRecord(config, new Rng(config.seed), 0, 3);
  return { ...rec, status: "failed", error, metrics: {}, perItem: [], details: undefined };
}

/** The synthetic grid: every task × method × targets × rank × quant × train size × seed. */
export async function syntheticRecords(opts: FixtureOptions = {}): Promise<RunRecord[]> {
  const root = new Rng(opts.seed ?? 1);
  const out: RunRecord[] = [];
  const limit = opts.limit ?? Infinity;
  const seeds = opts.seeds ?? 3;
  for (const task of opts.tasks ?? ["classify", "retrieve", "lm"] as const) {
    const shapes: Array<{ method: string; methodOptions: Record<string, unknown> }> = [];
    for (const method of opts.rankedMethods ?? ["lora", "dora"]) {
      for (const targets of opts.targets ?? ["qv", "all"]) {
        for (const rank of opts.ranks ?? [4, 16]) {
          shapes.push({ method, methodOptions: { targets, rank, alpha: 2 * rank } });
        }
      }
    }
    for (const method of opts.unrankedMethods ?? ["ia3"]) {
      shapes.push({ method, methodOptions: { targets: "mlp" } });
    }
    for (const shape of shapes) {
      for (const scheme of opts.quants ?? ["none", "nf4", "fp4"]) {
        for (const trainSize of opts.trainSizes ?? [64, 256]) {
          for (let seed = 0; seed < seeds; seed++) {
            if (out.length >= limit) return out;
            const config = fixtureConfig({
              task,
              ...shape,
              quant: { scheme },
              trainSize,
              seed,
              diagnostics: opts.diagnostics ?? false,
            });
            out.push(
              await fixtureRecord(config, root.fork(`${task}|${out.length}`), opts.items, opts.curvePoints),
            );
          }
        }
      }
    }
    for (let i = 0; i < (opts.failures ?? 1) && out.length < limit; i++) {
      const config = fixtureConfig({
        task,
        method: "lora",
        methodOptions: { targets: "all", rank: 64, alpha: 128 },
        seed: i,
      });
      out.push(
        await failedRecord(config, "out of memory: peak 9.1 GiB over the 8 GiB cap (lower --batch-size)"),
      );
    }
  }
  return out;
}

/** A record whose name, method and dataset carry markup, to prove the report escapes it. */
export async function hostileRecord(payload = "<script>alert(1)</script>"): Promise<RunRecord> {
  const config = fixtureConfig({ method: `lora${payload}`, dataset: `fixture-topics${payload}` });
  const rec = await fixtureRecord(config, new Rng(99));
  return { ...rec, name: `${rec.name} ${payload}`, runId: `hostile-${payload}` };
}

/** Write records as a results folder (one JSON file per run). */
export async function writeResults(dir: string, records: readonly RunRecord[]): Promise<void> {
  // Named by run id, as bench writes them (readers refuse a record whose id is not its file name).
  for (const r of records) await writeFileAtomic(join(dir, `${r.runId}.json`), JSON.stringify(r));
}

/** The sweep file of {@link hypothesisStudy}: frozen and lora x quant x rank x train-per-class x 3 seeds. */
export const HYPOTHESIS_SWEEP = {
  fixed: { dataset: "wordnet-lex", targets: "q+v" },
  factors: {
    method: ["frozen", "lora"],
    quant: [{ name: "none", quant: "none" }, { name: "nf4+dq", quant: "nf4", "double-quant": true }],
    rank: [4, 16],
    "train-per-class": [8, 32],
    seed: [0, 1, 2],
  },
};

/** Data effect of 32 examples per class over 8, by seed: +5, -3, +1 points. */
const HYPOTHESIS_DATA = [0.05, -0.03, 0.01];

/**
 * A hand-built classification study of {@link HYPOTHESIS_SWEEP} whose effects are set by
 * construction: lora beats frozen by 20 points, nf4+dq moves accuracy by ±0.1 point (by seed),
 * rank 16 adds 3 points (2.8, 3.0, 3.2 by seed), and 32 examples per class over 8 add +5, -3 or
 * +1 points by seed. Returns the records and their sweep levels, built the way the plan expands
 * the file (frozen takes no rank, so its rank is "n/a" and it runs once per quant, train-per-class
 * and seed), with `hypotheses` checked by parseSweep.
 */
export async function hypothesisStudy(
  hypotheses: unknown[],
): Promise<{ records: RunRecord[]; sweep: SweepLevels }> {
  const spec = parseSweep({ ...HYPOTHESIS_SWEEP, hypotheses }, "hand.json");
  const records: RunRecord[] = [];
  const byRun = new Map<string, Record<string, string>>();
  for (const method of ["frozen", "lora"]) {
    for (const quant of ["none", "nf4+dq"]) {
      for (const rank of method === "frozen" ? [null] : [4, 16]) {
        for (const tpc of [8, 32]) {
          for (const seed of [0, 1, 2]) {
            const over: Partial<RunConfig> = {
              dataset: "wordnet-lex",
              method,
              methodOptions: rank === null ? {} : { targets: "q+v", rank, alpha: 16 },
              quant: quant === "none" ? { scheme: "none" } : { scheme: "nf4", doubleQuant: true },
              trainSize: null,
              trainPerClass: tpc,
              seed,
            };
            const config = fixtureConfig(over);
            const r = await fixtureRecord(config, new Rng(seed).fork(JSON.stringify(over)), 4, 2);
            r.metrics.accuracy = 0.40 + (method === "lora" ? 0.20 : 0) +
              (quant === "nf4+dq" ? (seed % 2 ? 0.001 : -0.001) : 0) +
              (rank === 16 ? 0.03 + 0.002 * (seed - 1) : 0) + (tpc === 32 ? HYPOTHESIS_DATA[seed] : 0);
            records.push(r);
            byRun.set(r.runId, {
              method,
              quant,
              rank: rank === null ? "n/a" : String(rank),
              "train-per-class": String(tpc),
              seed: String(seed),
            });
          }
        }
      }
    }
  }
  return {
    records,
    sweep: {
      source: "hand.json",
      factors: Object.keys(HYPOTHESIS_SWEEP.factors),
      byRun,
      hypotheses: spec.hypotheses,
    },
  };
}
