/**
 * From flags to validated run configurations: every check that can fail runs before any work,
 * with one clear error each (exit code 2).
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { asInputError, InputError, numberFlag, UsageError } from "../models/util/args.ts";
import { datasetTask, parseDatasetOptions } from "../datasets/registry.ts";
import type { Dataset } from "../datasets/types.ts";
import { parseQuantOptions, QUANT_SCHEMES } from "../methods/quant/config.ts";
import { resolveModelPath } from "../models/hub_cache.ts";
import { BACKEND_NAMES } from "../models/backend.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { NAMED_OPTIONS, optionFlag, plainContext } from "../methods/common.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunConfig } from "./record.ts";
import type { LoftqPlan } from "../methods/types.ts";
import {
  checkLoftq,
  modelPath,
  type ResolvedRun,
  resolveMethod,
  resolveQuant,
  resolveRun,
} from "./run_resolve.ts";
import { buildTask, loadRunDataset } from "./run_task.ts";

/** Peak learning rate when neither `--lr` nor the method says otherwise. */
export const DEFAULT_LR = 0.002;

/** Training examples per class when no size flag is given (classification). */
export const DEFAULT_TRAIN_PER_CLASS = 32;
/** Training items when no size flag is given (retrieval queries, LM texts). */
export const DEFAULT_TRAIN_SIZE = 512;

/** Parse a `--opt` value: numbers and booleans become typed, anything else stays a string. */
export function parseOptionValue(raw: string): unknown {
  if (raw === "true" || raw === "false") return raw === "true";
  const n = Number(raw);
  return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
}

/** Split repeatable `--FLAG KEY=VALUE` values into [key, raw value] pairs (UsageError on a bad pair). */
export function keyValuePairs(flag: string, pairs: readonly string[] | undefined): [string, string][] {
  return (pairs ?? []).map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flag} ${pair}: expected KEY=VALUE, e.g. --${flag} name=value`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}

/**
 * Collect options given by several spellings (`--rank 4`, `--opt rank=4`): the same option twice
 * with different values is a UsageError naming both spellings; the same value twice is harmless.
 */
class OptionSet {
  readonly values: Record<string, unknown> = {};
  readonly #spelling = new Map<string, string>();

  set(key: string, value: unknown, spelling: string): void {
    const before = this.#spelling.get(key);
    if (before !== undefined && this.values[key] !== value) {
      throw new UsageError(`${before} and ${spelling} set '${key}' differently; give it once`);
    }
    this.values[key] = value;
    this.#spelling.set(key, spelling);
  }
}

/**
 * Method options from the named flags (`--rank`, `--alpha`, `--targets`) and `--opt KEY=VALUE`
 * pairs (only those given); an option given twice with different values is a UsageError.
 */
export function methodOptionsFromFlags(v: Record<string, unknown>): Record<string, unknown> {
  const out = new OptionSet();
  const named: Record<string, (raw: string) => unknown> = {
    rank: (raw) => numberFlag("rank", raw, (n) => Number.isInteger(n) && n > 0),
    alpha: (raw) => numberFlag("alpha", raw, (n) => n > 0),
    targets: (raw) => raw,
  };
  for (const key of NAMED_OPTIONS) {
    if (v[key] !== undefined) out.set(key, named[key](String(v[key])), optionFlag(key, v[key]));
  }
  for (const [key, raw] of keyValuePairs("opt", v.opt as string[] | undefined)) {
    out.set(key, parseOptionValue(raw), `--opt ${key}=${raw}`);
  }
  return out.values;
}

/**
 * Dataset options from `--data-opt KEY=VALUE` pairs, checked by the dataset's strict schema
 * (datasets/options.ts); null when none are given (so the run config, and its id, stay without them).
 */
export function dataOptionsFromFlags(
  dataset: string,
  pairs: readonly string[] | undefined,
): Record<string, unknown> | null {
  const given = keyValuePairs("data-opt", pairs);
  if (given.length === 0) return null;
  const out = new OptionSet();
  for (const [key, raw] of given) out.set(key, raw, `--data-opt ${key}=${raw}`);
  try {
    return parseDatasetOptions(dataset, out.values);
  } catch (err) {
    throw new UsageError(`--data-opt: ${(err as Error).message}`);
  }
}

/** The largest seed: the generator (models/util/rng.ts) keeps `seed >>> 0`, 32 bits, so larger ones wrap. */
export const MAX_SEED = 2 ** 32 - 1;

/** One seed of flag `name` (`seed`, `split-seed`): an integer from 0 to {@link MAX_SEED}, else a one-line UsageError. */
export function seedFlag(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < 0 || n > MAX_SEED) {
    throw new UsageError(
      `--${name} ${text}: a seed is an integer from 0 to ${MAX_SEED} (the generator's 32-bit range)`,
    );
  }
  return n;
}

/** The seeds of `--seed 0,1,2`: each in range (see {@link seedFlag}), none given twice. */
export function parseSeeds(text: string): number[] {
  const seeds = text.split(",").map((s) => seedFlag("seed", s.trim()));
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) {
    throw new UsageError(`--seed ${text}: seed ${dup} is given twice; list each seed once`);
  }
  return seeds;
}

/**
 * Check that records can be written under `dir` before any work: the folder, or the nearest of
 * its parents that exists, must be a folder (missing folders are created when the first record is
 * written). Throws an InputError naming the file in the way.
 */
export function checkOutDir(dir: string, flag = "out"): void {
  let path = resolve(dir);
  for (;;) {
    let info: Deno.FileInfo | null = null;
    try {
      info = Deno.statSync(path);
    } catch (err) {
      // Missing, or under a file (ENOTDIR): look at the parent.
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
        throw new InputError(`--${flag} ${dir}: ${(err as Error).message}`);
      }
    }
    if (info !== null) {
      if (info.isDirectory) return;
      const what = path === resolve(dir) ? "is a file" : `is under ${path}, a file`;
      throw new InputError(`--${flag} ${dir} ${what}, not a folder; give a folder for the run records`);
    }
    const parent = dirname(path);
    if (parent === path) return;
    path = parent;
  }
}

const optionalInt = (name: string, v: unknown) =>
  v === undefined ? null : numberFlag(name, String(v), (n) => Number.isInteger(n) && n > 0);

/**
 * `--max-eval-mode`: `stratified` enters the config (and the run id); `first`, the default, leaves the
 * config as it was before the flag existed, so earlier run ids stay valid.
 */
function maxEvalMode(v: unknown, task: string): Pick<RunConfig, "maxEvalMode"> {
  if (v === undefined || v === "first") return {};
  if (v !== "stratified") {
    throw new UsageError(`--max-eval-mode ${v}: use first or stratified`);
  }
  if (task !== "classify") {
    throw new UsageError(`--max-eval-mode stratified samples per class: it needs a classification dataset`);
  }
  return { maxEvalMode: "stratified" };
}

/** Build one validated RunConfig per seed from parsed flags (see `BENCH_SPEC` in bench_options.ts). */
export function buildRunConfigs(v: Record<string, unknown>): RunConfig[] {
  // The same resolve code as every run's first stage (run_resolve.ts), on the flags' values.
  const method = resolveMethod(String(v.method), methodOptionsFromFlags(v));
  const dataset = String(v.dataset);
  let task: RunConfig["task"];
  try {
    task = datasetTask(dataset);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (v.task !== undefined && v.task !== task) {
    throw new UsageError(
      `--task ${v.task} does not fit dataset ${dataset} (a ${task} dataset); drop --task or pick another dataset`,
    );
  }
  const quant = quantFromFlags(v);
  const loftq = numberFlag("loftq", String(v.loftq ?? 0), (n) => Number.isInteger(n) && n >= 0);
  checkLoftq(loftq, resolveQuant(quant), method);
  let trainPerClass = optionalInt("train-per-class", v["train-per-class"]);
  let trainSize = optionalInt("train-size", v["train-size"]);
  // Without a size flag a run uses a small nested subset (the full WordNet splits hold 65k
  // examples): 32 per class for classification, 512 training items otherwise.
  if (trainPerClass === null && trainSize === null) {
    if (task === "classify") trainPerClass = DEFAULT_TRAIN_PER_CLASS;
    else trainSize = DEFAULT_TRAIN_SIZE;
  }
  if (trainPerClass !== null && task !== "classify") {
    throw new UsageError(
      `--train-per-class needs a classification dataset; ${dataset} is ${task}: use --train-size`,
    );
  }
  if (trainPerClass !== null && trainSize !== null) {
    throw new UsageError("give --train-size or --train-per-class, not both");
  }
  const backend = String(v.backend);
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new UsageError(`unknown --backend '${backend}'; use one of ${BACKEND_NAMES.join(", ")}`);
  }
  const schedule = String(v.schedule);
  if (!["cosine", "linear", "constant"].includes(schedule)) {
    throw new UsageError(`--schedule: use cosine, linear or constant`);
  }
  const pooling = String(v.pooling);
  if (!["mean", "last"].includes(pooling)) throw new UsageError(`--pooling: use mean or last`);
  const model = String(v.model);
  if (model !== "default") {
    // A folder or file, or ORG/NAME[@REV] in the local Hugging Face hub cache (models/hub_cache.ts).
    let resolved: string;
    try {
      resolved = resolveModelPath(model);
    } catch (err) {
      throw new InputError((err as Error).message.split("\n")[0]);
    }
    if (!existsSync(resolved)) throw new InputError(`model not found: ${model} (check --model)`);
  }
  if (model === "default" && !existsSync(modelPath(model))) {
    throw new InputError(
      `the embedded default model is missing at ${modelPath(model)}; run \`deno task pretrain\``,
    );
  }
  const tokenizer = v.tokenizer === undefined ? null : String(v.tokenizer);
  const forgettingText = v["forgetting-text"] === undefined ? null : String(v["forgetting-text"]);
  if (forgettingText !== null && !existsSync(forgettingText)) {
    throw new InputError(`forgetting text not found: ${forgettingText} (check --forgetting-text)`);
  }
  if (tokenizer !== null && !existsSync(tokenizer)) {
    throw new InputError(`tokenizer not found: ${tokenizer} (check --tokenizer)`);
  }
  const dataOptions = dataOptionsFromFlags(dataset, v["data-opt"] as string[] | undefined);
  const seeds = parseSeeds(String(v.seed));
  const base: Omit<RunConfig, "seed"> = {
    task,
    dataset,
    model,
    method: method.definition.name,
    methodOptions: method.options as Record<string, unknown>,
    quant,
    loftq,
    trainSize,
    trainPerClass,
    splitSeed: seedFlag("split-seed", String(v["split-seed"])),
    epochs: numberFlag("epochs", String(v.epochs), (n) => n > 0),
    steps: optionalInt("steps", v.steps),
    batchSize: numberFlag("batch-size", String(v["batch-size"]), (n) => Number.isInteger(n) && n > 0),
    gradAccum: numberFlag("grad-accum", String(v["grad-accum"]), (n) => Number.isInteger(n) && n > 0),
    lr: v.lr === undefined
      ? method.definition.defaultLr ?? DEFAULT_LR
      : numberFlag("lr", String(v.lr), (n) => n > 0),
    headLr: numberFlag("head-lr", String(v["head-lr"]), (n) => n > 0),
    warmupRatio: numberFlag("warmup", String(v.warmup), (n) => n >= 0 && n < 1),
    schedule: schedule as RunConfig["schedule"],
    weightDecay: numberFlag("weight-decay", String(v["weight-decay"]), (n) => n >= 0),
    clipNorm: numberFlag("clip", String(v.clip), (n) => n >= 0),
    maxLength: numberFlag("max-length", String(v["max-length"]), (n) => Number.isInteger(n) && n >= 2),
    pooling: pooling as RunConfig["pooling"],
    temperature: numberFlag("temperature", String(v.temperature), (n) => n > 0),
    evalEvery: numberFlag("eval-every", String(v["eval-every"]), (n) => Number.isInteger(n) && n >= 0),
    maxEval: optionalInt("max-eval", v["max-eval"]),
    ...maxEvalMode(v["max-eval-mode"], task),
    maxCorpus: optionalInt("max-corpus", v["max-corpus"]),
    backend,
    diagnostics: Boolean(v.diagnostics),
    ...(tokenizer === null ? {} : { tokenizer }),
    ...(forgettingText === null ? {} : { forgettingText }),
    ...(dataOptions === null ? {} : { dataOptions }),
    // Only when given, so that every earlier configuration keeps its run id.
    ...(v["grad-checkpoint"] ? { gradCheckpoint: true } : {}),
  };
  return seeds.map((seed) => ({ ...base, seed }));
}

/** What {@link checkRunConfig} checks besides the model and `--max-length`. */
export interface CheckParts {
  /** Apply the method once (targets, ranks, method options, the LoftQ plan). */
  method: boolean;
  /** Load the dataset and build the task on it (files, columns, classes, sizes). */
  data: boolean;
}

const throwAsInput = (err: unknown): never => {
  throw asInputError(err);
};

/** `--max-length` must fit the model's context (the positions it was trained for). */
export function checkMaxLength(config: RunConfig, maxSeqLen: number): void {
  if (config.maxLength > maxSeqLen) {
    throw new InputError(
      `--max-length ${config.maxLength} exceeds the context of model ${config.model} ` +
        `(${maxSeqLen} tokens); use --max-length ${maxSeqLen} or less`,
    );
  }
}

/** LoftQ's plan must fit its layers: rank r at most min(out, in) of each planned layer. */
export function checkLoftqPlan(model: LoadedModel["model"], plan: LoftqPlan): void {
  for (const name of plan.targets) {
    const layer = model.linear(name);
    if (plan.rank > Math.min(layer.inFeatures, layer.outFeatures)) {
      throw new InputError(
        `--loftq: rank ${plan.rank} is impossible for ${name} [${layer.outFeatures}x${layer.inFeatures}]; ` +
          "lower --rank",
      );
    }
  }
}

/**
 * The checks only the model's layers can answer, on the resolved method: apply it once (targets
 * that match no layer, ranks beyond a layer's shape, options that do not fit the model; each
 * method states these in its `apply`), and with `--loftq` its plan's layers and rank.
 */
function checkMethod(run: ResolvedRun, model: LoadedModel["model"]): void {
  const { definition, options } = run.method;
  definition.apply(model, options, plainContext(new Rng(0), 10)).dispose();
  if (run.loftqIterations > 0) checkLoftqPlan(model, definition.loftqPlan!(model, options));
}

async function checkData(config: RunConfig, loaded: LoadedModel): Promise<Dataset> {
  const data = await loadRunDataset(config);
  buildTask(loaded, config, data, new Rng(0)).dispose();
  return data;
}

/**
 * Check a run before any work. First the config's own checks, the run's resolve stage
 * (`resolveRun`: method, options, quantization, LoftQ; no file read). Then what needs the model:
 * load it (with `--tokenizer`), check `--max-length` against its context, apply the method once
 * (see `checkMethod`) and load the dataset and build the task on it (missing files and columns,
 * one class, bad UTF-8, ...). Every failure is an InputError or UsageError. Returns the loaded
 * dataset (null when `parts.data` is false), which `executeRun` can reuse for every seed. Sweeps
 * check every planned run with it before the first starts; `bench` instead checks its first run's
 * setup as that run makes it (`ExecuteOptions.validateSetup`), so the model loads once.
 */
export async function checkRunConfig(
  config: RunConfig,
  parts: CheckParts = { method: true, data: true },
): Promise<Dataset | null> {
  let run: ResolvedRun;
  try {
    run = resolveRun(config);
  } catch (err) {
    return throwAsInput(err);
  }
  const loaded = await loadModel(run.modelPath, config.tokenizer).catch(throwAsInput);
  try {
    checkMaxLength(config, loaded.model.config.maxSeqLen);
    if (parts.method) checkMethod(run, loaded.model);
    return parts.data ? await checkData(config, loaded) : null;
  } catch (err) {
    return throwAsInput(err);
  } finally {
    loaded.model.dispose();
  }
}

/**
 * The quantization a command line asks for (`--quant`, `--double-quant`, `--block-size`,
 * `--quant-opt`, as `BENCH_SPEC` in bench_options.ts declares them), not yet validated against the scheme.
 */
export function quantFromFlags(v: Record<string, unknown>): RunConfig["quant"] {
  const scheme = String(v.quant ?? "none");
  if (!QUANT_SCHEMES.includes(scheme as typeof QUANT_SCHEMES[number])) {
    throw new UsageError(`unknown --quant '${scheme}'; use one of ${QUANT_SCHEMES.join(", ")}`);
  }
  const quant: RunConfig["quant"] = { scheme };
  if (v["double-quant"]) quant.doubleQuant = true;
  if (v["block-size"] !== undefined) quant.blockSize = numberFlag("block-size", String(v["block-size"]));
  try {
    Object.assign(quant, parseQuantOptions((v["quant-opt"] as string[] | undefined) ?? []));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return quant;
}
