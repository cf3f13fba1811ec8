/**
 * Users' plain text for the lm task. A folder: every `.txt` file (sorted by name, not recursive)
 * is one document, id = file name. A single file: documents are its paragraphs (separated by
 * blank lines), id = `<file name>:<first line>`. Test split: the first max(1, round(n *
 * testFraction)) documents of a `splitSeed` permutation (default fraction 0.1); needs 2+ documents.
 * @module
 */
import { basename, join } from "node:path";
import { DEFAULT_SPLIT_SEED, seededOrder } from "./split.ts";
import { readTextFile } from "./text_io.ts";
import type { LmDataset, TextExample } from "./types.ts";

/** Options of {@link loadTextLm}. */
export interface TextLmOptions {
  name?: string;
  splitSeed?: number;
  testFraction?: number;
}

/** Split one file's text into paragraph documents with the line each starts on. */
export function paragraphs(text: string, file: string): TextExample[] {
  const out: TextExample[] = [];
  const lines = text.split(/\r?\n/);
  let start = -1;
  let buf: string[] = [];
  const flush = () => {
    if (buf.length > 0) out.push({ id: `${basename(file)}:${start + 1}`, text: buf.join("\n") });
    buf = [];
  };
  lines.forEach((line, i) => {
    if (line.trim() === "") flush();
    else {
      if (buf.length === 0) start = i;
      buf.push(line.trimEnd());
    }
  });
  flush();
  return out;
}

/** Load a text file or a folder of .txt files as an lm dataset (see module note). */
export async function loadTextLm(path: string, options: TextLmOptions = {}): Promise<LmDataset> {
  let docs: TextExample[];
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`${path}: not found; give a .txt file or a folder of them`);
    }
    throw err;
  }
  if (stat.isDirectory) {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) if (e.isFile && e.name.endsWith(".txt")) names.push(e.name);
    names.sort();
    docs = [];
    for (const n of names) {
      const file = join(path, n);
      const text = (await readTextFile(file, "text file")).trim();
      if (text === "") throw new Error(`${file}:1: empty text file; remove it or add text`);
      docs.push({ id: n, text });
    }
  } else {
    docs = paragraphs(await readTextFile(path, "text file"), path);
  }
  if (docs.length < 2) {
    throw new Error(
      `${path}: ${docs.length} document(s), need 2+ to split train/test; add .txt files or blank-line-separated paragraphs`,
    );
  }
  const seed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  const nTest = Math.max(1, Math.round(docs.length * (options.testFraction ?? 0.1)));
  const test = new Set(seededOrder(docs, seed, "text-lm:test").slice(0, nTest).map((d) => d.id));
  return {
    task: "lm",
    name: options.name ?? `text:${path}`,
    splitSeed: seed,
    train: docs.filter((d) => !test.has(d.id)),
    test: docs.filter((d) => test.has(d.id)),
  };
}
