/**
 * From flags to validated run configurations: every check that can fail runs before any work,
 * with one clear error each (exit code 2).
 * @module
 */
import { existsSync } from "node:fs";
import { InputError, numberFlag, UsageError } from "./args.ts";
import { getMethod, parseMethodConfig } from "../methods/registry.ts";
import { datasetTask } from "../datasets/registry.ts";
import { QUANT_SCHEMES, validateQuantConfig } from "../methods/quant/config.ts";
import { BACKEND_NAMES } from "../models/backend.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { plainContext } from "../methods/common.ts";
import { Rng } from "../models/rng.ts";
import type { RunConfig } from "./record.ts";

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

/** Method options from the named flags and `--opt KEY=VALUE` pairs (only those given). */
export function methodOptionsFromFlags(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v.rank !== undefined) {
    out.rank = numberFlag("rank", String(v.rank), (n) => Number.isInteger(n) && n > 0);
  }
  if (v.alpha !== undefined) out.alpha = numberFlag("alpha", String(v.alpha), (n) => n > 0);
  if (v.targets !== undefined) out.targets = String(v.targets);
  for (const pair of (v.opt as string[] | undefined) ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--opt ${pair}: expected KEY=VALUE`);
    out[pair.slice(0, eq)] = parseOptionValue(pair.slice(eq + 1));
  }
  return out;
}

const optionalInt = (name: string, v: unknown) =>
  v === undefined ? null : numberFlag(name, String(v), (n) => Number.isInteger(n) && n > 0);

/** Build one validated RunConfig per seed from parsed flags (see `BENCH_SPEC` in cli.ts). */
export function buildRunConfigs(v: Record<string, unknown>): RunConfig[] {
  const method = (() => {
    try {
      return getMethod(String(v.method));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  let methodOptions: Record<string, unknown>;
  try {
    methodOptions = parseMethodConfig(method, methodOptionsFromFlags(v)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
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
  const scheme = String(v.quant);
  if (!QUANT_SCHEMES.includes(scheme as typeof QUANT_SCHEMES[number])) {
    throw new UsageError(`unknown --quant '${scheme}'; use one of ${QUANT_SCHEMES.join(", ")}`);
  }
  const quant: RunConfig["quant"] = { scheme };
  if (v["double-quant"]) quant.doubleQuant = true;
  if (v["block-size"] !== undefined) quant.blockSize = numberFlag("block-size", String(v["block-size"]));
  try {
    validateQuantConfig(quant);
  } catch (err) {
    throw new UsageError(`--quant ${scheme}: ${(err as Error).message}`);
  }
  const loftq = numberFlag("loftq", String(v.loftq ?? 0), (n) => Number.isInteger(n) && n >= 0);
  if (loftq > 0 && scheme === "none") {
    throw new UsageError("--loftq needs a quantized base: add --quant nf4 (or another scheme)");
  }
  if (loftq > 0 && !["lora", "rslora"].includes(method.name)) {
    throw new UsageError(`--loftq initialises LoRA factors: use --method lora or rslora, not ${method.name}`);
  }
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
  if (model !== "default" && !existsSync(model)) {
    throw new InputError(`model not found: ${model} (check --model)`);
  }
  if (model === "default" && !existsSync(DEFAULT_MODEL_DIR)) {
    throw new InputError(
      `the embedded default model is missing at ${DEFAULT_MODEL_DIR}; run \`deno task pretrain\``,
    );
  }
  const seeds = String(v.seed).split(",").map((s) =>
    numberFlag("seed", s.trim(), (n) => Number.isInteger(n) && n >= 0)
  );
  const base: Omit<RunConfig, "seed"> = {
    task,
    dataset,
    model,
    method: method.name,
    methodOptions,
    quant,
    loftq,
    trainSize,
    trainPerClass,
    splitSeed: numberFlag("split-seed", String(v["split-seed"]), (n) => Number.isInteger(n) && n >= 0),
    epochs: numberFlag("epochs", String(v.epochs), (n) => n > 0),
    steps: optionalInt("steps", v.steps),
    batchSize: numberFlag("batch-size", String(v["batch-size"]), (n) => Number.isInteger(n) && n > 0),
    gradAccum: numberFlag("grad-accum", String(v["grad-accum"]), (n) => Number.isInteger(n) && n > 0),
    lr: v.lr === undefined ? method.defaultLr ?? DEFAULT_LR : numberFlag("lr", String(v.lr), (n) => n > 0),
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
    maxCorpus: optionalInt("max-corpus", v["max-corpus"]),
    backend,
    diagnostics: Boolean(v.diagnostics),
  };
  return seeds.map((seed) => ({ ...base, seed }));
}

/**
 * Check what needs the model: load it and apply the method once (unknown targets, impossible
 * ranks, bad method options surface here, before any work). Throws InputError.
 */
export async function checkRunConfig(config: RunConfig): Promise<void> {
  const { model } = await loadModel(config.model === "default" ? DEFAULT_MODEL_DIR : config.model).catch(
    (err) => {
      throw new InputError((err as Error).message);
    },
  );
  try {
    const method = getMethod(config.method);
    const applied = method.apply(
      model,
      parseMethodConfig(method, config.methodOptions),
      plainContext(new Rng(0), 10),
    );
    applied.dispose();
  } catch (err) {
    throw new InputError((err as Error).message);
  } finally {
    model.dispose();
  }
}
