/**
 * The first stage of a run: resolve and validate its config once, without touching the model or
 * the data. The later stages take the typed {@link ResolvedRun} instead of re-reading
 * `config.methodOptions` or re-validating `config.quant`.
 * @module
 */
import { UsageError } from "../models/util/args.ts";
import { DEFAULT_MODEL_DIR } from "../models/load.ts";
import type { DatasetSpec } from "../datasets/registry.ts";
import { getMethod, METHODS, parseMethodConfig } from "../methods/registry.ts";
import type { MethodDefinition } from "../methods/types.ts";
import { type ResolvedQuantConfig, validateQuantConfig } from "../methods/quant/config.ts";
import { schemeModule } from "../methods/quant/schemes.ts";
import type { RunConfig } from "./record.ts";

/** A method looked up by name with its options parsed by its schema (defaults filled in). */
export interface ResolvedMethod {
  // deno-lint-ignore no-explicit-any
  definition: MethodDefinition<any>;
  /** The parsed options, as `definition.apply` and `definition.loftqPlan` take them. */
  options: unknown;
}

/** A run's config resolved once: what every later stage needs, typed. */
export interface ResolvedRun {
  /** The config as given (records and run ids keep it unchanged). */
  readonly config: RunConfig;
  readonly method: ResolvedMethod;
  /** The frozen base's quantization with defaults filled in; null for `--quant none`. */
  readonly quant: ResolvedQuantConfig | null;
  /** LoftQ's alternating steps (0: off); when on, `method.definition.loftqPlan` exists and `quant` is set. */
  readonly loftqIterations: number;
  /** The model file or folder to load (`default` resolved to the embedded model). */
  readonly modelPath: string;
  /** The dataset request (name, `--data-opt` options, split seed, train size). */
  readonly dataset: DatasetSpec;
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

/** Look a method up and parse its options; a UsageError names the unknown method or the bad option. */
export function resolveMethod(name: string, options: Record<string, unknown>): ResolvedMethod {
  try {
    const definition = getMethod(name);
    return { definition, options: parseMethodConfig(definition, options) };
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError((err as Error).message);
  }
}

/** Validate a quantization request; null for `none`. The UsageError names `--quant`. */
export function resolveQuant(quant: RunConfig["quant"]): ResolvedQuantConfig | null {
  let resolved: ResolvedQuantConfig;
  try {
    resolved = validateQuantConfig(quant);
  } catch (err) {
    throw new UsageError(`--quant ${quant.scheme}: ${(err as Error).message}`);
  }
  return resolved.scheme === "none" ? null : resolved;
}

/** The methods that can start from LoftQ factors (those declaring `loftqPlan`). */
export function loftqMethods(): string[] {
  return [...METHODS.values()].filter((m) => m.loftqPlan !== undefined).map((m) => m.name);
}

/**
 * `--loftq N` needs a quantized base (its factors split W into Q + B A) and a method that declares
 * a LoftQ plan (the LoRA family); otherwise a UsageError naming the flag to change.
 */
export function checkLoftq(
  iterations: number,
  quant: ResolvedQuantConfig | null,
  method: ResolvedMethod,
): void {
  if (iterations === 0) return;
  if (quant === null) {
    throw new UsageError("--loftq needs a quantized base: add --quant nf4 (or another scheme)");
  }
  if (schemeModule(quant.scheme).needsCalibration) {
    throw new UsageError(
      `--loftq alternates quantization and SVD without activations; --quant ${quant.scheme} needs calibration ` +
        "activations: use --quant nf4 (or another calibration-free scheme) with --loftq",
    );
  }
  if (!method.definition.loftqPlan) {
    throw new UsageError(
      `--loftq initialises LoRA factors: use --method ${
        loftqMethods().join(" or ")
      }, not ${method.definition.name}`,
    );
  }
}

/**
 * Resolve a run's config: method and options, quantization, LoftQ, model path and dataset
 * request. Pure (no file is read); every failure is a one-line UsageError.
 */
export function resolveRun(config: RunConfig): ResolvedRun {
  const method = resolveMethod(config.method, config.methodOptions);
  const quant = resolveQuant(config.quant);
  checkLoftq(config.loftq, quant, method);
  return {
    config,
    method,
    quant,
    loftqIterations: config.loftq,
    modelPath: modelPath(config.model),
    dataset: datasetSpec(config),
  };
}
