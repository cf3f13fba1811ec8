/**
 * One benchmark run as a list of stages: resolve the config (run_resolve.ts), load the model and
 * build the task (run_task.ts), quantize the frozen base (frozen_base.ts), apply the method
 * (apply_method.ts), train (train_loop.ts), evaluate and measure (measure.ts), diagnose
 * (run_diagnostics.ts), save the adapter (save_adapter.ts), and return the run record. A run that
 * fails (NaN loss, a loss that never falls below its start, overflowing parameters, a method
 * error, out of memory) returns a record with status `failed` and the reason.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import type { BackendInfo } from "../models/backend.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Rng } from "../models/util/rng.ts";
import { collectGarbage } from "../models/util/gc.ts";
import { asInputError } from "../models/util/args.ts";
import type { Dataset } from "../datasets/types.ts";
import type { AppliedMethod } from "../methods/types.ts";
import { calibrationMs, environment, latencyStats } from "./env.ts";
import { type RunConfig, runIdOf, runName, type RunRecord, SCHEMA_VERSION } from "./record.ts";
import type { TaskRunner } from "./tasks/types.ts";
import { resolveRun } from "./run_resolve.ts";
import { checkLoftqPlan, checkMaxLength } from "./config.ts";
import { buildTask, loadRunDataset } from "./run_task.ts";
import {
  calibrateFrozenBase,
  type LayerCalibration,
  type LoftqFactors,
  quantizeFrozenBase,
  quantSummary,
  schemeCalibration,
} from "./frozen_base.ts";
import { type QuantLayerReport, quantLayerReport } from "../methods/quant/report.ts";
import { forgettingOf, genericNll, genericText } from "./forgetting.ts";
import { adaptedSize, applyMethod, methodContext } from "./apply_method.ts";
import { initDataProviders } from "./init_data.ts";
import { makeOptimizers, type RunOptimizers, totalSteps, trainLoop } from "./train_loop.ts";
import { evaluateAndMeasure, measureInference, memoryRecord } from "./measure.ts";
import { diagnose, probeTaskAttention } from "./run_diagnostics.ts";
import { saveAdapter, sequenceHeadOf } from "./save_adapter.ts";

export { datasetSpec, modelPath } from "./run_resolve.ts";
export { buildTask, loadRunDataset } from "./run_task.ts";
export { MIN_JUDGED_UPDATES, trainingFailure } from "./train_loop.ts";

/** Options of {@link executeRun} that do not change the run's identity. */
export interface ExecuteOptions {
  backend: BackendInfo;
  /** Hide the progress bar (sweeps print their own). */
  quiet?: boolean;
  /** Save the adapter (safetensors, and the PEFT layout where the method has one) under this folder. */
  saveAdapterDir?: string;
  /**
   * The run's dataset, already loaded by `loadRunDataset(config)` (bench loads and checks it once
   * for all seeds); loaded here when absent.
   */
  dataset?: Dataset;
  /**
   * Treat the run's input checks (config, model, `--max-length`, task, applying the method) as
   * validation: an error there is thrown as an InputError, nothing recorded, and `ready()` is called
   * once the method applied, before training. `bench` checks its first seed this way, so a bad
   * model, dataset or method option exits 2 with nothing written, and the model loads once.
   */
  validateSetup?: { ready: () => void };
}

/** A record of a run that has not started: status failed, zero timings, sizes and memory. */
function emptyRecord(
  config: RunConfig,
  runId: string,
  backend: BackendInfo,
  env: RunRecord["env"],
): RunRecord {
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: runName(config),
    status: "failed",
    config,
    metrics: {},
    perItem: [],
    curve: [],
    timing: {
      trainSeconds: 0,
      totalSeconds: 0,
      stepLatencyMs: latencyStats([]),
      trainTokensPerSecond: 0,
      inferLatencyMs: latencyStats([]),
      calibrationMs: 0,
    },
    memory: {
      peakTrainBytes: 0,
      peakInferBytes: 0,
      breakdown: { frozenWeights: 0, trainable: 0, optimizerState: 0, activations: 0 },
      computed: ["activations"],
      rssBytes: 0,
      source: backend.name === "webgpu"
        ? "tfjs tensor bytes on the GPU (webgpu buffers)"
        : "tfjs tensor bytes (backend memory)",
    },
    size: { trainableParams: 0, totalParams: 0, adapterBytes: 0, frozenBytes: 0, bitsPerFrozenParam: 32 },
    env,
  };
}

/** Run one configuration end to end and return its record (never throws for run failures). */
export async function executeRun(config: RunConfig, options: ExecuteOptions): Promise<RunRecord> {
  const runId = await runIdOf(config);
  const t0 = performance.now();
  const record = emptyRecord(config, runId, options.backend, await environment(options.backend));
  const startTensors = tf.memory().numTensors;
  let loaded: LoadedModel | undefined;
  let task: TaskRunner | undefined;
  let applied: AppliedMethod | undefined;
  let optimizers: RunOptimizers | undefined;
  // While true, a failure is the run's input at fault (config, model, dataset, method options): with
  // validateSetup it is thrown as an InputError. The forward passes in between (calibration,
  // latency, forgetting) are work: their failures are recorded like a training failure.
  let checkingInput = true;
  try {
    const run = resolveRun(config);
    record.timing.calibrationMs = await calibrationMs();
    const rng = new Rng(config.seed);
    loaded = await loadModel(run.modelPath, config.tokenizer);
    const model = loaded.model;
    checkMaxLength(config, model.config.maxSeqLen);
    if (run.loftqIterations > 0) {
      checkLoftqPlan(model, run.method.definition.loftqPlan!(model, run.method.options));
    }
    model.gradCheckpoint = config.gradCheckpoint === true;
    task = buildTask(loaded, config, options.dataset ?? await loadRunDataset(config), rng.fork("task"));
    checkingInput = false;

    // Frozen base, quantized (calibrated on a seeded sample of training items where the scheme
    // needs activations; with LoftQ's factors for the method's plan): the frozen model's latency
    // before and after packing it.
    let factors: LoftqFactors = new Map();
    let calibration: LayerCalibration = new Map();
    const outputErrors = new Map<string, number>();
    if (run.quant) {
      record.timing.inferLatencyUnquantizedMs = latencyStats(await measureInference(task, 10));
      const items = rng.fork("calibration").shuffle(Array.from({ length: task.trainItems }, (_, i) => i));
      calibration = calibrateFrozenBase(
        model,
        run,
        task.trainSequences(items.slice(0, run.quant.calibrationItems)),
      );
      factors = quantizeFrozenBase(model, run, calibration, outputErrors);
      // Keep only what the method context reads (the calibration-based schemes'): every layer's
      // recorded inputs are 0.2 GB at 0.6B, 0.4 GB at 1.5B (q, k, v and gate, up share theirs).
      calibration = schemeCalibration(run.quant, calibration);
      collectGarbage();
      record.timing.inferLatencyQuantizedMs = latencyStats(await measureInference(task, 10));
    }

    // The method; --diagnostics probes the frozen model's attention before it applies.
    const steps = totalSteps(config, task.trainItems);
    const frozenAttention = config.diagnostics ? probeTaskAttention(model, task) : null;
    const generic = genericText(config.dataset, config.forgettingText);
    const genericBefore = await genericNll(model, loaded.tokenizer, generic.text);
    checkingInput = true;
    applied = applyMethod(
      model,
      run,
      methodContext(
        run,
        rng.fork("method"),
        steps,
        factors,
        calibration,
        initDataProviders(model, task, config.batchSize, rng.fork("init-data")),
      ),
    );
    const headVars = task.headVariables;
    record.size = adaptedSize(model, applied, headVars);
    record.quant = quantSummary(model, config, record.timing);
    checkingInput = false;
    options.validateSetup?.ready();

    // Training; a failed run keeps its curve up to the failure.
    optimizers = makeOptimizers(applied, headVars, config);
    const trained = await trainLoop({
      task,
      method: applied,
      methodVars: applied.trainable,
      headVars,
      optimizers,
      steps,
      config,
      orderRng: rng.fork("data-order"),
      label: record.name,
      quiet: options.quiet,
    });
    record.curve = trained.curve;
    record.memory.peakTrainBytes = trained.peakTrainBytes;
    if (trained.failure !== null) throw new Error(trained.failure);

    // Evaluation, latency and memory.
    const measured = await evaluateAndMeasure(task, config.maxEval);
    record.memory = memoryRecord(record.memory, {
      peakTrainBytes: trained.peakTrainBytes,
      peakInferBytes: measured.peakInferBytes,
      frozenBytes: record.size.frozenBytes,
      trainableParams: record.size.trainableParams,
      optimizerBytes: (optimizers.method?.stateBytes ?? 0) + (optimizers.head?.stateBytes ?? 0),
      rssBytes: Deno.memoryUsage().rss,
    });
    record.metrics = measured.evaluation.metrics;
    record.primaryMetric = task.primaryMetric;
    record.primaryDirection = task.higherIsBetter ? "higher" : "lower";
    // Per-layer quantization figures, read after training and evaluation so llm-int8's outlier
    // shares cover every forward pass of the run.
    if (record.quant && run.quant) {
      record.quant = { ...record.quant, ...withOutputErrors(quantLayerReport(model.linears), outputErrors) };
    }
    record.perItem = measured.evaluation.perItem;
    record.details = measured.evaluation.details;
    Object.assign(record, {
      trivial: task.trivialBaselines?.(config.maxEval),
      tokenizerCoverage: task.tokenizerCoverage?.(),
    });
    record.timing = {
      ...record.timing,
      trainSeconds: trained.trainSeconds,
      evalSeconds: measured.evalSeconds,
      evalTokensPerSecond: measured.evalSeconds > 0 ? measured.evaluation.tokens / measured.evalSeconds : 0,
      stepLatencyMs: latencyStats(trained.stepTimes),
      trainTokensPerSecond: trained.trainSeconds > 0 ? trained.tokens / trained.trainSeconds : 0,
      inferLatencyMs: latencyStats(measured.inferTimes),
    };

    record.forgetting = forgettingOf(
      generic.name,
      genericBefore,
      await genericNll(model, loaded.tokenizer, generic.text),
    );
    if (config.diagnostics) record.diagnostics = diagnose(model, applied, task, frozenAttention);
    if (options.saveAdapterDir) {
      await saveAdapter(
        join(options.saveAdapterDir, runId),
        applied,
        sequenceHeadOf(task, config),
        config.quant,
      );
    }
    record.status = "success";
  } catch (err) {
    if (checkingInput && options.validateSetup) throw asInputError(err);
    record.status = "failed";
    record.error = failureReason(err);
  } finally {
    optimizers?.method?.dispose();
    optimizers?.head?.dispose();
    applied?.dispose();
    task?.dispose();
    loaded?.model.dispose();
    record.timing.totalSeconds = (performance.now() - t0) / 1000;
    const leaked = tf.memory().numTensors - startTensors;
    if (leaked > 0 && record.status === "success") {
      record.details = { ...record.details, leakedTensors: leaked };
    }
  }
  return record;
}

/**
 * A failed run's reason: the error's first line, with the fix when the wasm heap ran out (tfjs
 * reports it as `Aborted()` or an out-of-bounds access).
 */
export function failureReason(err: unknown): string {
  const line = (err as Error).message.split("\n")[0];
  if (!/Aborted\(\)|memory access out of bounds|out of memory/i.test(line)) return line;
  return `${line}: the 4 GiB wasm heap ran out; add --grad-checkpoint, or lower --batch-size or --max-length`;
}

/**
 * The quantization report with each layer's output error on the fixed calibration batch
 * (`outputRelativeError`) and their mean over layers (`meanOutputRelativeError`, null when none).
 */
function withOutputErrors(report: QuantLayerReport, errors: ReadonlyMap<string, number>) {
  const layers: Record<string, QuantLayerReport["layers"][string] & { outputRelativeError?: number }> = {
    ...report.layers,
  };
  for (const [name, e] of errors) {
    if (layers[name]) layers[name] = { ...layers[name], outputRelativeError: e };
  }
  const values = [...errors.values()];
  return {
    ...report,
    layers,
    meanOutputRelativeError: values.length > 0 ? values.reduce((s, e) => s + e, 0) / values.length : null,
  };
}
