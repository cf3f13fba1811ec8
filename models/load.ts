/**
 * One entry point for every model source: a llama2.c `.bin` file or a Hugging Face folder, with
 * its tokenizer. Default: the embedded model that peft-bench pretrains itself (`models/default`).
 * @module
 */
import { dirname, join } from "node:path";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LlamaModel } from "./llama.ts";
import { inspectLlama2c, readLlama2c } from "./llama2c.ts";
import { inspectHfFolder, readHfFolder } from "./hf.ts";
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

/** A model source checked without reading its weights: config, tokenizer, paths. */
export interface CheckedModel {
  config: LlamaConfig;
  tokenizer: Tokenizer;
  /** Paths, for run records. */
  source: { model: string; tokenizer: string };
}

/**
 * Check a model source without reading its weights: the path exists; the config (or llama2.c
 * header) is within bounds; every tensor of a Hugging Face folder has the name, dtype and shape
 * the config implies; a llama2.c file is long enough for its header; the tokenizer exists, loads
 * and fits the vocabulary. Errors are one line naming the path and the fix. Cheap enough to run
 * before any work starts.
 */
export async function checkModel(
  modelPath = DEFAULT_MODEL_DIR,
  tokenizerPath?: string,
): Promise<CheckedModel> {
  if (!existsSync(modelPath)) {
    const hint = modelPath === DEFAULT_MODEL_DIR
      ? " (run `deno task pretrain` to build it)"
      : " (check --model)";
    throw new Error(`model not found: ${modelPath}${hint}`);
  }
  const isDir = statSync(modelPath).isDirectory();
  const config = isDir ? (await inspectHfFolder(modelPath)).config : await inspectLlama2c(modelPath);
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
 * Load a model (llama2.c `.bin` file or Hugging Face folder) and its tokenizer, after
 * {@link checkModel}'s checks, so a bad source fails before its weights are read. Errors are one
 * line naming the path and the fix.
 */
export async function loadModel(modelPath = DEFAULT_MODEL_DIR, tokenizerPath?: string): Promise<LoadedModel> {
  const { tokenizer, source } = await checkModel(modelPath, tokenizerPath);
  const isDir = statSync(modelPath).isDirectory();
  const { config, weights } = isDir ? await readHfFolder(modelPath) : await readLlama2c(modelPath);
  const model = LlamaModel.fromWeights(config, weights, modelPath);
  return { model, tokenizer, source };
}
