/**
 * One entry point for every tokenizer file peft-bench understands.
 * @module
 */
import { join } from "node:path";
import { loadHfTokenizer } from "./hf.ts";
import { loadLlama2cTokenizer } from "./llama2c.ts";
import type { Tokenizer } from "./types.ts";

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Load a tokenizer by path: a `.bin` file is a llama2.c tokenizer, a `.json` file a Hugging Face
 * tokenizer.json, and a folder means its `tokenizer.json` (or, failing that, its `tokenizer.bin`).
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const info = await statOrNull(path);
  if (info === null) {
    throw new Error(
      `tokenizer not found: ${path} (give a llama2.c .bin, a tokenizer.json, or a folder holding one)`,
    );
  }
  if (info.isDirectory) {
    for (const name of ["tokenizer.json", "tokenizer.bin"]) {
      const inner = join(path, name);
      if ((await statOrNull(inner))?.isFile) return loadTokenizer(inner);
    }
    throw new Error(
      `tokenizer folder ${path} has no tokenizer.json or tokenizer.bin; point at the tokenizer file itself`,
    );
  }
  const lower = path.toLowerCase();
  if (lower.endsWith(".bin")) return await loadLlama2cTokenizer(path);
  if (lower.endsWith(".json")) return await loadHfTokenizer(path);
  throw new Error(`tokenizer ${path}: unknown file type (expected a llama2.c .bin or a Hugging Face .json)`);
}
