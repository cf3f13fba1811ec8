/**
 * One entry point for every dataset: `loadDataset({ name, ...options })`.
 *
 * Names: `wordnet-lex` (classify), `wordnet-concepts` (retrieve), `wordnet-glosses` (lm),
 * `sotu` (lm), and users' data by prefix: `csv:PATH`, `tsv:PATH`, `jsonl:PATH` (classify),
 * `beir:DIR` (retrieve), `skos:PATH` (retrieve), `text:PATH` (lm; a file or folder).
 *
 * Every spec may set `splitSeed` (seeds the train-subset permutation and caps; never the run seed)
 * and `trainSize` or `trainPerClass` (classify only), applied with `subsetTrain`: classify and lm
 * subset their train texts, retrieve its train queries (and their qrels / hard negatives).
 * @module
 */
import { loadBeir } from "./beir.ts";
import { loadSkos } from "./skos.ts";
import { sotu } from "./sotu.ts";
import { subsetTrain } from "./split.ts";
import { loadTextLm } from "./text_lm.ts";
import type { Dataset, TaskKind } from "./types.ts";
import { loadClassificationFiles } from "./user_classify.ts";
import { wordnetConcepts, wordnetGlosses, wordnetLex } from "./wordnet_tasks.ts";
import {
  classifyFileSchema,
  conceptSchema,
  type DatasetOptionSchema,
  noOptionsSchema,
  optionKeys,
  parseWithSchema,
  skosSchema,
  textLmSchema,
  wordnetCapSchema,
} from "./options.ts";

/** A dataset request: a name (see module note) plus that dataset's options. */
export interface DatasetSpec {
  name: string;
  splitSeed?: number;
  trainSize?: number;
  trainPerClass?: number;
  [option: string]: unknown;
}

interface Entry {
  task: TaskKind;
  /** The dataset's own options (strict: unknown keys are errors); see options.ts. */
  options: DatasetOptionSchema;
  describe: string;
  load: (arg: string, o: Record<string, unknown>) => Dataset | Promise<Dataset>;
}

// deno-lint-ignore no-explicit-any
const fileLoader = (format: "csv" | "tsv" | "jsonl") => (arg: string, o: any) =>
  loadClassificationFiles(`${format}:${arg}`, { ...o, train: arg, format });

const ENTRIES: Record<string, Entry> = {
  "wordnet-lex": {
    task: "classify",
    options: wordnetCapSchema,
    describe: "WordNet noun gloss -> lexicographer class (26)",
    load: (_, o) => wordnetLex(o),
  },
  "wordnet-concepts": {
    task: "retrieve",
    options: conceptSchema,
    describe: "WordNet noun gloss -> concept (lemma names)",
    load: (_, o) => wordnetConcepts(o),
  },
  "wordnet-glosses": {
    task: "lm",
    options: wordnetCapSchema.pick({ maxTest: true }),
    describe: "WordNet noun glosses",
    load: (_, o) => wordnetGlosses(o),
  },
  sotu: {
    task: "lm",
    options: noOptionsSchema,
    describe: "State of the Union addresses",
    load: (_, o) => sotu(o),
  },
  "csv:": {
    task: "classify",
    options: classifyFileSchema,
    describe: "CSV text,label file",
    load: fileLoader("csv"),
  },
  "tsv:": {
    task: "classify",
    options: classifyFileSchema,
    describe: "TSV text,label file",
    load: fileLoader("tsv"),
  },
  "jsonl:": {
    task: "classify",
    options: classifyFileSchema,
    describe: "JSONL text,label file",
    load: fileLoader("jsonl"),
  },
  "beir:": {
    task: "retrieve",
    options: noOptionsSchema,
    describe: "BEIR folder",
    load: (arg, o) => loadBeir(arg, o),
  },
  "skos:": {
    task: "retrieve",
    options: skosSchema,
    describe: "SKOS thesaurus (.ttl/.nt/.rdf/.jsonld)",
    load: (arg, o) => loadSkos(arg, o),
  },
  "text:": {
    task: "lm",
    options: textLmSchema,
    describe: "text file or folder of .txt",
    load: (arg, o) => loadTextLm(arg, o),
  },
};

function lookup(name: string): { key: string; entry: Entry; arg: string } {
  if (ENTRIES[name] && !name.endsWith(":")) return { key: name, entry: ENTRIES[name], arg: "" };
  const colon = name.indexOf(":");
  const key = name.slice(0, colon + 1);
  if (colon > 0 && ENTRIES[key] && name.length > colon + 1) {
    return { key, entry: ENTRIES[key], arg: name.slice(colon + 1) };
  }
  throw new Error(`unknown dataset "${name}"; known: ${knownDatasets().map((d) => d.name).join(", ")}`);
}

/**
 * Every known dataset name (prefixes shown as `csv:PATH` etc.), its task, a description and the
 * keys of its own options (`--data-opt KEY=VALUE` on the command line).
 */
export function knownDatasets(): { name: string; task: TaskKind; describe: string; options: string[] }[] {
  return Object.entries(ENTRIES).map(([k, e]) => ({
    name: k.endsWith(":") ? `${k}${k === "beir:" ? "DIR" : "PATH"}` : k,
    task: e.task,
    describe: e.describe,
    options: optionKeys(e.options),
  }));
}

/** The task a dataset name serves (throws on an unknown name, listing the known ones). */
export function datasetTask(name: string): TaskKind {
  return lookup(name).entry.task;
}

/**
 * Check a dataset's own options (everything but name, splitSeed, trainSize and trainPerClass) with
 * its strict schema and return them parsed (string forms of numbers and booleans become typed).
 * Throws one line naming the bad option and listing the valid keys; an unknown name lists the
 * known datasets.
 */
export function parseDatasetOptions(name: string, options: Record<string, unknown>): Record<string, unknown> {
  return parseWithSchema(name, lookup(name).entry.options, options);
}

/**
 * Throw when a loaded dataset cannot serve its task: a classifier needs train examples of two or
 * more classes and test examples; retrieval and lm need test queries or texts (a retrieval set
 * without train queries still evaluates, zero-shot; lm's training rows are the task's to check).
 */
export function checkUsable(ds: Dataset): void {
  const empty = (what: string, n: number) => {
    if (n === 0) throw new Error(`dataset ${ds.name}: no ${what}; add data`);
  };
  if (ds.task === "classify") {
    empty("training examples", ds.train.length);
    empty("test examples", ds.test.length);
    if (ds.labels.length < 2) {
      throw new Error(
        `dataset ${ds.name}: only one class ('${ds.labels[0]}') in train; ` +
          "a classifier needs two or more: add examples of another label",
      );
    }
  } else if (ds.task === "retrieve") {
    empty("test queries", ds.queries.test.length);
  } else {
    empty("test texts", ds.test.length);
  }
}

/**
 * Load a dataset by spec (its options checked by {@link parseDatasetOptions}, the result by
 * {@link checkUsable}), then apply `trainSize` / `trainPerClass` (see module note).
 */
export async function loadDataset(spec: DatasetSpec): Promise<Dataset> {
  const { name, trainSize, trainPerClass, splitSeed, ...rest } = spec;
  const { entry, arg } = lookup(name);
  const options = parseDatasetOptions(name, rest);
  if (trainPerClass !== undefined && entry.task !== "classify") {
    throw new Error(`dataset "${name}" (${entry.task}): trainPerClass needs labels; use trainSize`);
  }
  const ds = await entry.load(arg, splitSeed === undefined ? options : { ...options, splitSeed });
  checkUsable(ds);
  if (trainSize === undefined && trainPerClass === undefined) return ds;
  const sub = { trainSize, trainPerClass };
  if (ds.task === "classify" || ds.task === "lm") {
    const train = subsetTrain(ds.train, sub, ds.splitSeed);
    return { ...ds, train } as Dataset;
  }
  const queries = subsetTrain(ds.queries.train, sub, ds.splitSeed);
  const keep = new Set(queries.map((q) => q.id));
  const qrels = new Map([...ds.qrels.train].filter(([q]) => keep.has(q)));
  // Drop hard negatives only of the train queries left out; dev/test ones stay.
  const dropped = new Set(ds.queries.train.map((q) => q.id).filter((id) => !keep.has(id)));
  const hardNegatives = ds.hardNegatives && new Map([...ds.hardNegatives].filter(([q]) => !dropped.has(q)));
  return {
    ...ds,
    queries: { ...ds.queries, train: queries },
    qrels: { ...ds.qrels, train: qrels },
    hardNegatives,
  };
}
