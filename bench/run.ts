/**
 * One benchmark run: load the model, quantize the frozen base, apply the method, train on the
 * task, evaluate, measure time and memory, and return the run record. A run that fails (NaN loss,
 * a loss that never falls below its start, overflowing parameters, a method error, out of memory)
 * returns a record with status `failed` and the reason.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import type { BackendInfo } from "../models/backend.ts";
import { countParameters } from "../models/config.ts";
import { Linear, type LinearModule } from "../models/linear.ts";
import { DEFAULT_MODEL_DIR, type LoadedModel, loadModel } from "../models/load.ts";
import { Rng } from "../models/util/rng.ts";
import { writeSafetensors } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { type DatasetSpec, loadDataset } from "../datasets/registry.ts";
import type { Dataset } from "../datasets/types.ts";
import { getMethod, parseMethodConfig } from "../methods/registry.ts";
import type { AppliedMethod, MethodContext, Optimizer } from "../methods/types.ts";
import { QuantizedLinear } from "../methods/quant/linear.ts";
import { validateQuantConfig } from "../methods/quant/config.ts";
import { loftqInit } from "../methods/quant/loftq.ts";
import { LoraLinear } from "../methods/lora.ts";
import { selectTargets } from "../methods/targets.ts";
import { updateDiagnostics } from "../methods/diagnostics/spectrum.ts";
import { entanglementProfile } from "../methods/diagnostics/entanglement.ts";
import {
  type AttentionProbe,
  compareProbes,
  probeAttentionEntropy,
} from "../methods/diagnostics/attention_probe.ts";
import { AdamW, learningRate } from "./optim.ts";
import { Progress } from "./progress.ts";
import { calibrationMs, environment, latencyStats } from "./env.ts";
import { type RunConfig, runIdOf, runName, type RunRecord, SCHEMA_VERSION } from "./record.ts";
import type { TaskRunner } from "./tasks/types.ts";
import { classifyTask } from "./tasks/classify.ts";
import { retrieveTask } from "./tasks/retrieve.ts";
import { lmTask } from "./tasks/lm.ts";
import { join } from "node:path";

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
}

/** The model path a config names (`default` is the embedded model). */
export function modelPath(model: string): string {
  return model === "default" ? DEFAULT_MODEL_DIR : model;
}

/** The dataset request of a run: its dataset, `--data-opt` options, split seed and train size. */
export function datasetSpec(config: RunConfig): DatasetSpec {
  return {
    ...config.dataOptions,
    name: config.dataset,
    splitSeed: config.splitSeed,
    ...(config.trainSize ? { trainSize: config.trainSize } : {}),
    ...(config.trainPerClass ? { trainPerClass: config.trainPerClass } : {}),
  };
}

/** Load a run's dataset (see {@link datasetSpec}). */
export function loadRunDataset(config: RunConfig): Promise<Dataset> {
  return loadDataset(datasetSpec(config));
}

/** Every linear module of the model, including the bases that method wrappers keep (each once). */
function allLinears(model: LoadedModel["model"]): LinearModule[] {
  const seen = new Set<LinearModule>();
  const visit = (l: LinearModule) => {
    if (seen.has(l)) return;
    seen.add(l);
    const base = (l as { base?: LinearModule }).base;
    if (base) visit(base);
  };
  for (const l of model.linears.values()) visit(l);
  return [...seen];
}

/** Frozen parameters' stored bytes and count (quantized layers count their packed bytes). */
function frozenFootprint(
  model: LoadedModel["model"],
  trainable: Set<tf.Variable>,
): { bytes: number; params: number } {
  // The frozen tensors the forward pass uses: every linear's weight (or packed codes) and bias as the
  // layers now hold them (a method may have replaced a base, e.g. PiSSA's residual), plus the
  // embedding and norm gains; each variable once.
  const vars = new Set<tf.Variable>();
  let bytes = 0;
  let params = 0;
  for (const l of allLinears(model)) {
    if (l instanceof QuantizedLinear) {
      bytes += l.weight.storedBytes;
      params += l.inFeatures * l.outFeatures;
    } else if (l instanceof Linear) vars.add(l.weight);
    if (l.bias) vars.add(l.bias);
  }
  for (const [name, v] of model.params) {
    if (!model.linears.has(name.replace(/\.(weight|bias)$/, ""))) vars.add(v);
  }
  for (const v of vars) {
    if (trainable.has(v)) continue;
    bytes += 4 * v.size;
    params += v.size;
  }
  return { bytes, params };
}

/**
 * Replace every decoder linear by its quantized form, freeing the fp32 weights. With LoftQ, the
 * target layers' bases come from LoftQ's alternating quantize/SVD, and the returned factors
 * (A [r, in], B [out, r] with W ~ Q + B A) initialise the LoRA adapters after the method applies.
 */
function quantizeBase(
  model: LoadedModel["model"],
  config: RunConfig,
): Map<string, { a: Float32Array; b: Float32Array }> {
  const factors = new Map<string, { a: Float32Array; b: Float32Array }>();
  if (config.quant.scheme === "none") return factors;
  const q = validateQuantConfig(config.quant);
  const loftqTargets = config.loftq > 0
    ? new Set(selectTargets(model, String(config.methodOptions.targets)))
    : new Set();
  for (const [name, layer] of [...model.linears]) {
    if (!name.startsWith("layers.")) continue;
    const w = layer.denseWeight();
    if (loftqTargets.has(name)) {
      const r = loftqInit(w.dataSync() as Float32Array, w.shape as [number, number], {
        config: q,
        rank: Number(config.methodOptions.rank),
        iterations: config.loftq,
      });
      model.linears.set(name, new QuantizedLinear(name, r.quantized, layer.bias));
      factors.set(name, { a: r.a, b: r.b });
    } else {
      model.linears.set(name, QuantizedLinear.fromDense(name, w, q, layer.bias));
    }
    model.params.get(`${name}.weight`)?.dispose();
    model.params.delete(`${name}.weight`);
  }
  return factors;
}

/** Start LoRA adapters from LoftQ's factors: s B' A' = B A, so A' = A and B' = B / s. */
function applyLoftqFactors(
  model: LoadedModel["model"],
  factors: Map<string, { a: Float32Array; b: Float32Array }>,
) {
  for (const [name, f] of factors) {
    const layer = model.linears.get(name);
    if (!(layer instanceof LoraLinear)) throw new Error(`--loftq needs a LoRA layer at ${name}`);
    layer.a.assign(tf.tensor(f.a, layer.a.shape));
    layer.b.assign(tf.tidy(() => tf.div(tf.tensor(f.b, layer.b.shape), layer.scale)));
  }
}

async function measureInference(task: TaskRunner, count: number): Promise<number[]> {
  const n = Math.min(count, Math.max(task.testItems, 1));
  for (let i = 0; i < 3; i++) await task.inferOne(i); // warm-up: kernels compiled, caches filled
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await task.inferOne(i);
    times.push(performance.now() - t0);
  }
  return times;
}

/** The run's task on a loaded model and dataset (throws when the dataset does not serve the config's task). */
export function buildTask(loaded: LoadedModel, config: RunConfig, data: Dataset, rng: Rng): TaskRunner {
  const { model, tokenizer } = loaded;
  if (data.task !== config.task) {
    throw new Error(
      `dataset ${config.dataset} serves task '${data.task}', not '${config.task}'; use --task ${data.task}`,
    );
  }
  if (data.task === "classify") {
    return classifyTask(
      model,
      tokenizer,
      data,
      { maxLength: config.maxLength, pooling: config.pooling },
      rng,
    );
  }
  if (data.task === "retrieve") {
    return retrieveTask(model, tokenizer, data, {
      maxLength: config.maxLength,
      pooling: config.pooling,
      temperature: config.temperature,
      maxCorpus: config.maxCorpus,
    }, rng);
  }
  return lmTask(model, tokenizer, data, { maxLength: config.maxLength });
}

/**
 * Runs with fewer updates are not judged by their loss curve: each update's loss is on another
 * batch, and over a few updates batch-to-batch noise dominates (the stories260K fixture's loss
 * rises over its first three or four updates before it falls).
 */
export const MIN_JUDGED_UPDATES = 10;

/**
 * Why a finished training run failed, or null when it trained.
 * - `trainables`, read once: a tensor whose sum of squares is not finite in float32 (a NaN or
 *   infinite value, or values beyond about 1.8e19, whose squares overflow) means the parameters
 *   overflowed, as `--lr 1e30` does (lora_B near 1e30 while the loss sits at chance level).
 * - `curve`, each update's loss (a non-finite loss already stopped the run at its step): a loss
 *   that never falls below its first value over a run of {@link MIN_JUDGED_UPDATES} or more
 *   updates means the run diverged or did not learn.
 */
export function trainingFailure(
  curve: readonly { loss: number }[],
  trainables: readonly tf.Variable[],
): string | null {
  if (trainables.length > 0) {
    const probes = tf.tidy(() => tf.stack(trainables.map((v) => tf.sum(tf.square(v)))));
    const bad = [...probes.dataSync()].filter((x) => !Number.isFinite(x)).length;
    probes.dispose();
    if (bad > 0) {
      return `trainable parameters overflowed (${bad} of ${trainables.length} tensors hold values ` +
        "whose squares are not finite in float32); lower --lr or --head-lr";
    }
  }
  if (curve.length < MIN_JUDGED_UPDATES) return null;
  const start = curve[0].loss;
  const best = Math.min(...curve.slice(1).map((p) => p.loss));
  if (best < start) return null;
  return `loss never fell below its start over ${curve.length} updates (${start.toPrecision(5)} at step 0, ` +
    `lowest later ${best.toPrecision(5)}): the run diverged or did not learn; lower --lr or --head-lr`;
}

/** Run one configuration end to end and return its record (never throws for run failures). */
export async function executeRun(config: RunConfig, options: ExecuteOptions): Promise<RunRecord> {
  const runId = await runIdOf(config);
  const t0 = performance.now();
  const record: RunRecord = {
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
      source: options.backend.name === "webgpu"
        ? "tfjs tensor bytes on the GPU (webgpu buffers)"
        : "tfjs tensor bytes (backend memory)",
    },
    size: { trainableParams: 0, totalParams: 0, adapterBytes: 0, frozenBytes: 0, bitsPerFrozenParam: 32 },
    env: await environment(options.backend),
  };
  const startTensors = tf.memory().numTensors;
  let loaded: LoadedModel | undefined;
  let task: TaskRunner | undefined;
  let applied: AppliedMethod | undefined;
  const optimizers: Optimizer[] = [];
  try {
    record.timing.calibrationMs = await calibrationMs();
    const rng = new Rng(config.seed);
    loaded = await loadModel(modelPath(config.model), config.tokenizer);
    const model = loaded.model;
    const data = options.dataset ?? await loadRunDataset(config);
    task = buildTask(loaded, config, data, rng.fork("task"));

    // Quantization: the frozen model's latency before and after packing the base.
    let loftqFactors = new Map<string, { a: Float32Array; b: Float32Array }>();
    if (config.quant.scheme !== "none") {
      record.timing.inferLatencyUnquantizedMs = latencyStats(await measureInference(task, 10));
      loftqFactors = quantizeBase(model, config);
      record.timing.inferLatencyQuantizedMs = latencyStats(await measureInference(task, 10));
    }
    const quant = config.quant.scheme === "none" ? null : validateQuantConfig(config.quant);
    const method = getMethod(config.method);
    const steps = config.steps ??
      Math.ceil((config.epochs * task.trainItems) / (config.batchSize * config.gradAccum));
    const ctx: MethodContext = {
      rng: rng.fork("method"),
      totalSteps: steps,
      makeFrozenLinear: (name, weight, bias) =>
        quant
          ? QuantizedLinear.fromDense(name, weight, quant, bias)
          : new Linear(name, variableOf(() => tf.clone(weight), false), bias),
    };
    // --diagnostics: the frozen base's attention entropy, probed before the method changes the model.
    const frozenAttention = config.diagnostics ? probeTaskAttention(model, task) : null;
    applied = method.apply(model, parseMethodConfig(method, config.methodOptions), ctx);
    applyLoftqFactors(model, loftqFactors);
    const methodVars = applied.trainable;
    const headVars = task.headVariables;
    const allVars = [...methodVars, ...headVars];
    const trainableSet = new Set(allVars);
    const frozen = frozenFootprint(model, trainableSet);
    const trainableParams = allVars.reduce((s, v) => s + v.size, 0);
    record.size = {
      trainableParams,
      totalParams: countParameters(model.config) + trainableParams -
        methodVars.filter((v) => [...model.params.values()].includes(v)).reduce((s, v) => s + v.size, 0),
      adapterBytes: writeSafetensors(
        new Map([...applied.state()].map(([n, t]) => [n, { data: t.data, shape: t.shape }])),
      ).length,
      frozenBytes: frozen.bytes,
      bitsPerFrozenParam: frozen.params > 0 ? (8 * frozen.bytes) / frozen.params : 0,
    };
    record.quant = quantSummary(model, config, record.timing);

    // Training.
    const optOptions = { weightDecay: config.weightDecay, clipNorm: config.clipNorm };
    const methodOpt = methodVars.length > 0
      ? applied.makeOptimizer?.(optOptions) ?? new AdamW(methodVars, optOptions)
      : null;
    const headOpt = headVars.length > 0 ? new AdamW(headVars, optOptions) : null;
    for (const o of [methodOpt, headOpt]) if (o) optimizers.push(o);
    const schedule = {
      lr: config.lr,
      totalSteps: steps,
      warmupSteps: Math.round(config.warmupRatio * steps),
      decay: config.schedule,
    };
    const orderRng = rng.fork("data-order");
    let order: number[] = [];
    const nextBatch = () => {
      if (order.length < config.batchSize) {
        order = order.concat(orderRng.shuffle(Array.from({ length: task!.trainItems }, (_, i) => i)));
      }
      return order.splice(0, config.batchSize);
    };
    const progress = new Progress(steps, record.name, options.quiet);
    const stepTimes: number[] = [];
    let tokens = 0;
    const trainStart = performance.now();
    const canTrain = allVars.length > 0 && steps > 0;
    for (let step = 0; canTrain && step < steps; step++) {
      const s0 = performance.now();
      const lrScale = learningRate(step, schedule) / config.lr;
      const update = async () => {
        let lossSum = 0;
        let acc: tf.Tensor[] | null = null;
        for (let micro = 0; micro < config.gradAccum; micro++) {
          const items = nextBatch();
          tokens += task!.batchTokens(items);
          const { value, grads } = tf.variableGrads(() => {
            const loss = task!.loss(items);
            return applied!.regularizer ? tf.add(loss, applied!.regularizer()) as tf.Scalar : loss;
          }, allVars);
          const list = allVars.map((v) => grads[v.name] ?? tf.zerosLike(v));
          lossSum += (await value.data())[0];
          value.dispose();
          if (acc === null) acc = list;
          else {
            const prev: tf.Tensor[] = acc;
            acc = prev.map((g, i) => tf.add(g, list[i]));
            tf.dispose([...prev, ...list]);
          }
        }
        let grads = acc!;
        if (config.gradAccum > 1) {
          const summed = grads;
          grads = summed.map((g) => tf.div(g, config.gradAccum));
          tf.dispose(summed);
        }
        const loss = lossSum / config.gradAccum;
        if (!Number.isFinite(loss)) {
          throw new Error(`loss became ${loss} at step ${step}; lower --lr or check the data`);
        }
        if (methodOpt) methodOpt.apply(grads.slice(0, methodVars.length), config.lr * lrScale).dispose();
        if (headOpt) headOpt.apply(grads.slice(methodVars.length), config.headLr * lrScale).dispose();
        applied!.afterStep?.(new Map(allVars.map((v, i) => [v, grads[i]])), step);
        tf.dispose(grads);
        return loss;
      };
      let loss: number;
      if (step === 1) {
        // Peak memory of a representative update (tf.profile tracks the engine's peak bytes).
        let l = 0;
        const info = await tf.profile(async () => {
          l = await update();
        });
        record.memory.peakTrainBytes = info.peakBytes;
        loss = l;
      } else loss = await update();
      stepTimes.push(performance.now() - s0);
      const point: RunRecord["curve"][number] = { step, loss, lr: config.lr * lrScale };
      if (config.evalEvery > 0 && (step + 1) % config.evalEvery === 0 && step + 1 < steps) {
        const ev = await task.evaluate("dev", config.maxEval);
        point.evalMetric = ev.metrics[task.primaryMetric];
      }
      record.curve.push(point);
      progress.tick(1, `loss ${loss.toFixed(4)}`);
    }
    const trainSeconds = (performance.now() - trainStart) / 1000;
    const failure = trainingFailure(record.curve, allVars);
    if (failure !== null) throw new Error(failure);

    // Evaluation, latency and inference memory.
    const evalStart = performance.now();
    const evaluation = await task.evaluate("test", config.maxEval);
    const evalSeconds = (performance.now() - evalStart) / 1000;
    const inferTimes = await measureInference(task, 20);
    const inferProfile = await tf.profile(async () => await task!.inferOne(0));
    const optimizerBytes = optimizers.reduce((s, o) => s + o.stateBytes, 0);
    const trainableBytes = 4 * trainableParams;
    if (record.memory.peakTrainBytes === 0) record.memory.peakTrainBytes = inferProfile.peakBytes;
    record.memory = {
      ...record.memory,
      peakInferBytes: inferProfile.peakBytes,
      breakdown: {
        frozenWeights: frozen.bytes,
        trainable: trainableBytes,
        optimizerState: optimizerBytes,
        activations: Math.max(
          0,
          record.memory.peakTrainBytes - frozen.bytes - trainableBytes - optimizerBytes,
        ),
      },
      rssBytes: Deno.memoryUsage().rss,
    };
    record.metrics = evaluation.metrics;
    record.perItem = evaluation.perItem;
    record.details = evaluation.details;
    record.timing = {
      ...record.timing,
      trainSeconds,
      evalSeconds,
      stepLatencyMs: latencyStats(stepTimes),
      trainTokensPerSecond: trainSeconds > 0 ? tokens / trainSeconds : 0,
      inferLatencyMs: latencyStats(inferTimes),
    };
    if (config.diagnostics) record.diagnostics = diagnose(model, applied, task, frozenAttention);
    if (options.saveAdapterDir) await saveAdapter(join(options.saveAdapterDir, runId), applied);
    record.status = "success";
  } catch (err) {
    record.status = "failed";
    record.error = (err as Error).message.split("\n")[0];
  } finally {
    for (const o of optimizers) o.dispose();
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

/** The quantized linears' storage and the dequantization's latency cost on the frozen model. */
function quantSummary(
  model: LoadedModel["model"],
  config: RunConfig,
  timing: RunRecord["timing"],
): RunRecord["quant"] {
  let bytes = 0;
  let params = 0;
  for (const l of allLinears(model)) {
    if (l instanceof QuantizedLinear) {
      bytes += l.weight.storedBytes;
      params += l.inFeatures * l.outFeatures;
    } else if (l instanceof Linear && l.name.startsWith("layers.")) {
      bytes += 4 * l.inFeatures * l.outFeatures;
      params += l.inFeatures * l.outFeatures;
    }
  }
  const before = timing.inferLatencyUnquantizedMs?.p50;
  const after = timing.inferLatencyQuantizedMs?.p50;
  return {
    ...config.quant,
    loftq: config.loftq,
    linearBytes: bytes,
    bitsPerParam: params > 0 ? (8 * bytes) / params : 32,
    dequantCostMs: before !== undefined && after !== undefined ? after - before : null,
  };
}

/** Texts the attention probe reads: the first test items of the task. */
const PROBE_TEXTS = 8;
/** A length enters the attention entropy curve only when at least this many texts reach it. */
const PROBE_MIN_TEXTS = 4;

/**
 * Attention spectral entropy S(l) of the model on the task's first test texts. A probe that
 * cannot run (no texts, texts too short for two lengths) is recorded as its reason rather than
 * failing the run, since the diagnostics are an aside to the benchmark.
 */
function probeTaskAttention(
  model: LoadedModel["model"],
  task: TaskRunner,
): AttentionProbe | { error: string } {
  const sequences = task.sampleSequences?.(PROBE_TEXTS) ?? [];
  if (sequences.length === 0) return { error: "the task offers no sample texts" };
  try {
    return probeAttentionEntropy(model, sequences, undefined, {
      minSequences: Math.min(PROBE_MIN_TEXTS, sequences.length),
    });
  } catch (err) {
    return { error: (err as Error).message.split("\n")[0] };
  }
}

/**
 * Spectra, effective rank and entanglement profile of each adapted layer's update (methods with
 * deltaWeights), and the attention entropy S(l) of the frozen vs the adapted model with its
 * log-law fits and slope change deltaB (`attention`).
 */
function diagnose(
  model: LoadedModel["model"],
  applied: AppliedMethod,
  task: TaskRunner,
  frozenAttention: AttentionProbe | { error: string } | null,
): Record<string, unknown> {
  const adapted = probeTaskAttention(model, task);
  const attention = !frozenAttention || "error" in frozenAttention
    ? frozenAttention
    : "error" in adapted
    ? adapted
    : compareProbes(frozenAttention, adapted);
  if (!applied.deltaWeights) return { nominalRank: applied.nominalRank ?? null, layers: {}, attention };
  const layers: Record<string, unknown> = {};
  const deltas = applied.deltaWeights();
  for (const [name, dW] of deltas) {
    const shape = dW.shape as [number, number];
    const d = dW.dataSync() as Float32Array;
    const w = tf.tidy(() => model.linear(name).denseWeight().dataSync() as Float32Array);
    const norm = Math.hypot(...d.subarray(0, Math.min(d.length, 4096)));
    const summary = updateDiagnostics(d, w, shape, applied.nominalRank ?? Math.min(...shape));
    const entanglement = norm > 0 ? entanglementProfile(d, shape) : null;
    layers[name] = { ...summary, entanglement };
  }
  tf.dispose([...deltas.values()]);
  return { nominalRank: applied.nominalRank ?? null, layers, attention };
}

/** Write the adapter's tensors (and the Hugging Face PEFT layout where available). */
async function saveAdapter(dir: string, applied: AppliedMethod): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const state = applied.state();
  await writeFileAtomic(join(dir, "adapter.safetensors"), writeSafetensors(state));
  if (applied.peftExport) {
    const { config, tensors } = applied.peftExport();
    await writeFileAtomic(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
    await writeFileAtomic(join(dir, "adapter_model.safetensors"), writeSafetensors(tensors));
  }
}
