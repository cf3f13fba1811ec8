/**
 * Users' classification data from CSV/TSV or JSONL files.
 *
 * Splits: a file per split (`train`, `dev`, `test`), or carved from the train file. Carving is
 * stratified and seeded: for each label (its rows in a `splitSeed` permutation), the first
 * floor(n * testFraction) rows go to test and the next floor(n * devFraction) to dev, so a rare
 * label stays in train rather than landing only in test.
 * Ids come from `idColumn`, else `<file name>:<line>`.
 * @module
 */
import { basename, extname } from "node:path";
import { parseCsv } from "./csv.ts";
import { DEFAULT_SPLIT_SEED, seededOrder } from "./split.ts";
import { readTextFile } from "./text_io.ts";
import { dataOptionFlag } from "./options.ts";
import type { ClassificationDataset, ClassificationExample, SplitName } from "./types.ts";

/** Options of {@link loadClassificationFiles}. */
export interface ClassificationFileOptions {
  /** Path of the training file (or of the only file, to be split). */
  train: string;
  dev?: string;
  test?: string;
  /** Default from the extension: `.csv`, `.tsv`, `.jsonl`/`.ndjson`. */
  format?: "csv" | "tsv" | "jsonl";
  /** Column/field with the text. Default "text". */
  textColumn?: string;
  /** Column/field with the label. Default "label". */
  labelColumn?: string;
  /** Column/field with a unique id; default `<file name>:<line>`. */
  idColumn?: string;
  splitSeed?: number;
  /** Fraction carved from train when no dev file is given. Default 0.1. */
  devFraction?: number;
  /** Fraction carved from train when no test file is given. Default 0.1. */
  testFraction?: number;
}

/** One row of a user file: its line and its column -> value record. */
export interface Row {
  file: string;
  line: number;
  values: Record<string, unknown>;
}

/** Read CSV/TSV/JSONL rows; for CSV the first record is the header. */
export async function readRows(path: string, format?: "csv" | "tsv" | "jsonl"): Promise<Row[]> {
  const fmt = format ?? formatFromPath(path);
  const text = await readTextFile(path, "data file");
  if (fmt === "jsonl") return parseJsonl(text, path);
  const records = parseCsv(text, path, fmt === "tsv" ? "\t" : ",");
  if (records.length === 0) throw new Error(`${path}:1: empty file; add a header row and data rows`);
  const header = records[0].fields;
  return records.slice(1).map((r) => ({
    file: path,
    line: r.line,
    values: Object.fromEntries(header.map((h, i) => [h.trim(), r.fields[i]])),
  }));
}

/** Parse JSON Lines: one object per non-blank line. */
export function parseJsonl(text: string, path: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (err) {
      throw new Error(
        `${path}:${i + 1}: invalid JSON (${(err as Error).message}); write one JSON object per line`,
      );
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new Error(`${path}:${i + 1}: expected a JSON object; write one {"field": value} object per line`);
    }
    rows.push({ file: path, line: i + 1, values: v as Record<string, unknown> });
  }
  return rows;
}

function formatFromPath(path: string): "csv" | "tsv" | "jsonl" {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".tsv") return "tsv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  throw new Error(`${path}: unknown file type "${ext}"; use .csv, .tsv or .jsonl, or set format`);
}

/**
 * The string value of a column, or a one-line error naming file, line, column and fix. `option`
 * is the dataset option that names the column (the hint says how to set it), or null for a fixed
 * field name (the hint says to add the field).
 */
export function column(row: Row, col: string, option: string | null, allowEmpty = false): string {
  const v = row.values[col];
  if (v === undefined || v === null) {
    const have = Object.keys(row.values).join(", ") || "none";
    const fix = option === null
      ? `add a "${col}" field to every row`
      : `rename the column to "${col}" or set ${dataOptionFlag(option, "COLUMN")}`;
    throw new Error(`${row.file}:${row.line}: no column "${col}" (found: ${have}); ${fix}`);
  }
  const s = typeof v === "string"
    ? v.trim()
    : typeof v === "number" || typeof v === "boolean"
    ? String(v)
    : "";
  if (typeof v === "object") {
    throw new Error(`${row.file}:${row.line}: column "${col}" is not text; give a string value`);
  }
  if (s === "" && !allowEmpty) {
    throw new Error(`${row.file}:${row.line}: empty "${col}"; fill it in or remove the row`);
  }
  return s;
}

/** Load a classification dataset from user files (see module note for splits and ids). */
export async function loadClassificationFiles(
  name: string,
  options: ClassificationFileOptions,
): Promise<ClassificationDataset> {
  const textCol = options.textColumn ?? "text";
  const labelCol = options.labelColumn ?? "label";
  const seed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  const where = new Map<string, string>(); // id -> "file:line", for duplicate errors
  const load = async (path: string): Promise<ClassificationExample[]> => {
    const rows = await readRows(path, options.format);
    return rows.map((row) => {
      const id = options.idColumn
        ? column(row, options.idColumn, "idColumn")
        : `${basename(path)}:${row.line}`;
      const at = `${row.file}:${row.line}`;
      if (where.has(id)) {
        throw new Error(`${at}: duplicate id "${id}" (first at ${where.get(id)}); make ids unique`);
      }
      where.set(id, at);
      return { id, text: column(row, textCol, "textColumn"), label: column(row, labelCol, "labelColumn") };
    });
  };
  const parts: Record<SplitName, ClassificationExample[]> = {
    train: await load(options.train),
    dev: options.dev ? await load(options.dev) : [],
    test: options.test ? await load(options.test) : [],
  };
  if (!options.test || !options.dev) {
    const testFrac = options.test ? 0 : options.testFraction ?? 0.1;
    const devFrac = options.dev ? 0 : options.devFraction ?? 0.1;
    const byLabel = Map.groupBy(parts.train, (e) => e.label);
    const toTest = new Set<string>(), toDev = new Set<string>();
    for (const [label, group] of byLabel) {
      const order = seededOrder(group, seed, `carve:${label}`);
      const nTest = Math.floor(group.length * testFrac), nDev = Math.floor(group.length * devFrac);
      order.slice(0, nTest).forEach((e) => toTest.add(e.id));
      order.slice(nTest, nTest + nDev).forEach((e) => toDev.add(e.id));
    }
    // Keep file order within each split so users can find rows again.
    parts.test.push(...parts.train.filter((e) => toTest.has(e.id)));
    parts.dev.push(...parts.train.filter((e) => toDev.has(e.id)));
    parts.train = parts.train.filter((e) => !toTest.has(e.id) && !toDev.has(e.id));
  }
  if (parts.train.length === 0) {
    throw new Error(`${options.train}: no training rows; add data rows below the header`);
  }
  if (parts.test.length === 0) {
    throw new Error(
      `${options.train}: test split is empty; add rows, give a test file (${
        dataOptionFlag("test", "PATH")
      }) or raise ${dataOptionFlag("testFraction")}`,
    );
  }
  const labels = [...new Set(parts.train.map((e) => e.label))].sort();
  const known = new Set(labels);
  for (const split of ["dev", "test"] as const) {
    for (const e of parts[split]) {
      if (!known.has(e.label)) {
        throw new Error(
          `${
            where.get(e.id)
          }: label "${e.label}" appears in ${split} but never in train; add train examples of it or drop these rows`,
        );
      }
    }
  }
  return { task: "classify", name, splitSeed: seed, labels, ...parts };
}
