/**
 * One entry point for every model source: a llama2.c `.bin` file or a Hugging Face folder, with
 * its tokenizer. Default: the embedded model that peft-bench pretrains itself (`models/default`).
 * @module
 */
import { dirname, join } from "node:path";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { isStorableWeight, LlamaModel } from "./llama.ts";
import { inspectLlama2c, readLlama2c } from "./llama2c.ts";
import { inspectHfFolder, readHfFolder, readHfFolderStored } from "./hf.ts";
import { StoredTensor } from "./stored.ts";
import { resolveModelPath } from "./hub_cache.ts";
import { InputError } from "./util/args.ts";
import type { LlamaConfig } from "./config.ts";
import { loadTokenizer } from "./tokenizers/load.ts";
import type { Tokenizer } from "./tokenizers/types.ts";

/** Folder of the embedded default model (a Hugging Face folder made by `deno task pretrain`). */
export const DEFAULT_MODEL_DIR: string = fileURLToPath(new URL("./default", import.meta.url));

/** A loaded model with its tokenizer and where they came from. */
export interface LoadedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** Paths, for run records. */
  source: { model: string; tokenizer: string };
}

/** Where to find the tokenizer of a model path when none is given. */
export function defaultTokenizerPath(modelPath: string): string {
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) return join(modelPath, "tokenizer.json");
  // llama2.c keeps tokenizers beside models: tokenizer.bin, or tok<N>.bin for small vocabularies.
  const dir = dirname(modelPath);
  const candidates = [
    "tokenizer.bin",
    ...[...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^tok\d+\.bin$/.test(n)),
  ];
  const hit = candidates.find((n) => existsSync(join(dir, n)));
  if (!hit) throw new Error(`no tokenizer found beside ${modelPath}; pass --tokenizer PATH`);
  return join(dir, hit);
}

/**
 * Where frozen weights live: `auto` keeps linear weights and the embedding table outside the heap
 * on the native backend when they would take more than {@link OFF_HEAP_AUTO_BYTES} as float32
 * tensors, `always` does so on any backend (slow off native: each product decodes its weight),
 * `never` keeps every weight a float32 tensor.
 */
export type OffHeapMode = "auto" | "always" | "never";

/** Options of {@link loadModel} and {@link checkModel}. */
export interface LoadOptions {
  /** Default `auto`. */
  offHeap?: OffHeapMode;
  /** The backend the model will run on (default: the active tfjs backend). */
  backend?: string;
}

/**
 * Above this many bytes of storable weights as float32 (a quarter of the wasm heap's 4 GiB), the
 * native backend keeps them off the heap. Below it the model loads as before, so every existing run
 * on the small default model is unchanged; above it, the 4 GiB heap would have to hold the weights
 * beside activations, evaluation and optimizer state.
 */
export const OFF_HEAP_AUTO_BYTES = 1024 ** 3;

/**
 * Float32 bytes of all weights (as the heap would hold them) a wasm-heap backend can take with room
 * left to train and evaluate: half of tfjs-backend-wasm's 4 GiB heap (`getHeapMax`:
 * 4,294,901,760 bytes). A Qwen3-0.6B-class model (2.4 GB as float32) trains 4 steps on wasm and then
 * dies with `Aborted()` in evaluation; above this limit a run fails before it starts.
 */
export const WASM_HEAP_MODEL_LIMIT_BYTES = 2 * 1024 ** 3;

/** Float32 bytes of a config's parameters: all of them, and the ones that may live off the heap. */
export function parameterBytes(config: LlamaConfig): { total: number; storable: number } {
  let total = 0;
  let storable = 0;
  for (const [name, shape] of LlamaModel.parameterShapes(config)) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    total += bytes;
    if (isStorableWeight(name)) storable += bytes;
  }
  return { total, storable };
}

/** Whether a model of this config keeps its storable weights off the heap on `backend`. */
export function usesOffHeap(
  config: LlamaConfig,
  mode: OffHeapMode = "auto",
  backend = tf.getBackend(),
): boolean {
  if (mode !== "auto") return mode === "always";
  return backend === "native" && parameterBytes(config).storable > OFF_HEAP_AUTO_BYTES;
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

/**
 * Fail (InputError, one line) when the model's tensors exceed what the backend's heap can hold:
 * the wasm backend (and native with `offHeap: "never"`) share a wasm32 heap of 4 GiB.
 */
function checkFitsBackend(config: LlamaConfig, modelPath: string, options: LoadOptions): void {
  const backend = options.backend ?? tf.getBackend();
  if (backend !== "wasm" && backend !== "native") return;
  const { total, storable } = parameterBytes(config);
  const onHeap = usesOffHeap(config, options.offHeap, backend) ? total - storable : total;
  if (onHeap <= WASM_HEAP_MODEL_LIMIT_BYTES) return;
  throw new InputError(
    `model ${modelPath} needs ${gib(onHeap)} of float32 tensors, more than the ${backend} backend's 4 GiB ` +
      `wasm heap holds with room to train (${gib(WASM_HEAP_MODEL_LIMIT_BYTES)}); use --backend native, ` +
      "which keeps frozen weights outside the heap",
  );
}

/** A model source checked without reading its weights: config, tokenizer, paths. */
export interface CheckedModel {
  config: LlamaConfig;
  tokenizer: Tokenizer;
  /** Paths, for run records. */
  source: { model: string; tokenizer: string };
}

/**
 * Check a model source without reading its weights: the path exists (an `ORG/NAME[@REV]` that is
 * no path resolves to its snapshot in the local Hugging Face hub cache, see `hub_cache.ts`; the
 * returned `source.model` is that folder); the config (or llama2.c
 * header) is within bounds; every tensor of a Hugging Face folder has the name, dtype and shape
 * the config implies; a llama2.c file is long enough for its header; the tokenizer exists, loads
 * and fits the vocabulary. Errors are one line naming the path and the fix. Cheap enough to run
 * before any work starts.
 */
export async function checkModel(
  model = DEFAULT_MODEL_DIR,
  tokenizerPath?: string,
  options: LoadOptions = {},
): Promise<CheckedModel> {
  const modelPath = resolveModelPath(model);
  if (!existsSync(modelPath)) {
    const hint = modelPath === DEFAULT_MODEL_DIR
      ? " (run `deno task pretrain` to build it)"
      : " (check --model)";
    throw new Error(`model not found: ${modelPath}${hint}`);
  }
  const isDir = statSync(modelPath).isDirectory();
  const config = isDir ? (await inspectHfFolder(modelPath)).config : await inspectLlama2c(modelPath);
  checkFitsBackend(config, modelPath, options);
  const tokPath = tokenizerPath ?? defaultTokenizerPath(modelPath);
  if (!existsSync(tokPath)) throw new Error(`tokenizer not found: ${tokPath} (pass --tokenizer PATH)`);
  const tokenizer = await loadTokenizer(tokPath);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(
      `tokenizer ${tokPath} has ${tokenizer.vocabSize} tokens but model ${modelPath} only ${config.vocabSize}; ` +
        "pass the tokenizer that belongs to this model",
    );
  }
  return { config, tokenizer, source: { model: modelPath, tokenizer: tokPath } };
}

/**
 * Load a model (llama2.c `.bin` file, Hugging Face folder, or `ORG/NAME[@REV]` from the local hub
 * cache) and its tokenizer, after
 * {@link checkModel}'s checks, so a bad source fails before its weights are read. Errors are one
 * line naming the path and the fix. With off-heap weights ({@link usesOffHeap}), linear weights and
 * the embedding table stay {@link StoredTensor}s in the file's precision.
 */
export async function loadModel(
  modelSource = DEFAULT_MODEL_DIR,
  tokenizerPath?: string,
  options: LoadOptions = {},
): Promise<LoadedModel> {
  const { tokenizer, source, config: checked } = await checkModel(modelSource, tokenizerPath, options);
  const modelPath = source.model; // a hub id resolved to its cached snapshot
  const isDir = statSync(modelPath).isDirectory();
  const offHeap = usesOffHeap(checked, options.offHeap, options.backend ?? tf.getBackend());
  let config: LlamaConfig;
  let weights: Map<string, Float32Array | StoredTensor>;
  if (isDir && offHeap) ({ config, weights } = await readHfFolderStored(modelPath));
  else {
    const read = isDir ? await readHfFolder(modelPath) : await readLlama2c(modelPath);
    config = read.config;
    weights = read.weights;
    if (offHeap) {
      // llama2c checkpoints are float32: wrapped as they are, no copy.
      const shapes = LlamaModel.parameterShapes(config);
      for (const [name, data] of read.weights) {
        const shape = shapes.get(name);
        if (shape && isStorableWeight(name) && data.length === shape[0] * shape[1]) {
          weights.set(name, StoredTensor.fromFloat32(data, shape));
        }
      }
    }
  }
  const model = LlamaModel.fromWeights(config, weights, modelPath);
  return { model, tokenizer, source };
}
