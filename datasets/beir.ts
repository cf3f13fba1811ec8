/**
 * Users' retrieval data in BEIR layout: `corpus.jsonl` ({_id, title?, text}), `queries.jsonl`
 * ({_id, text}) and `qrels/{train,dev,test}.tsv` with header `query-id corpus-id score`.
 * `qrels/test.tsv` is required, train and dev optional. A document's text is `title. text`
 * when it has a title. Each split's queries are those its qrels name, in queries.jsonl order.
 * All splits share the one corpus, as in BEIR; score-0 judgements are kept (non-relevant).
 * @module
 */
import { join } from "node:path";
import { parseCsv } from "./csv.ts";
import { column, parseJsonl } from "./user_classify.ts";
import { DEFAULT_SPLIT_SEED } from "./split.ts";
import { readTextFile } from "./text_io.ts";
import type { Qrels, RetrievalDataset, SplitName, TextExample } from "./types.ts";

async function readJsonlTexts(path: string, withTitle: boolean): Promise<TextExample[]> {
  const rows = parseJsonl(await readTextFile(path, "BEIR file"), path);
  const seen = new Map<string, number>();
  return rows.map((row) => {
    const id = column(row, "_id", null);
    if (seen.has(id)) {
      throw new Error(
        `${path}:${row.line}: duplicate _id "${id}" (first on line ${seen.get(id)}); make ids unique`,
      );
    }
    seen.set(id, row.line);
    const text = column(row, "text", null);
    const title = withTitle && row.values.title !== undefined ? column(row, "title", null, true) : "";
    return { id, text: title ? `${title}. ${text}` : text };
  });
}

async function readQrels(path: string, queries: Set<string>, docs: Set<string>): Promise<Qrels> {
  const records = parseCsv(await readTextFile(path, "BEIR qrels file"), path, "\t");
  const header = records[0]?.fields.map((h) => h.trim());
  if (!header || header.join(" ") !== "query-id corpus-id score") {
    throw new Error(`${path}:1: header must be "query-id<TAB>corpus-id<TAB>score"; add that header line`);
  }
  const qrels: Qrels = new Map();
  for (const { line, fields } of records.slice(1)) {
    const [qid, did, scoreText] = fields.map((f) => f.trim());
    if (!queries.has(qid)) {
      throw new Error(`${path}:${line}: unknown query "${qid}"; add it to queries.jsonl or drop the line`);
    }
    if (!docs.has(did)) {
      throw new Error(`${path}:${line}: unknown document "${did}"; add it to corpus.jsonl or drop the line`);
    }
    const score = Number(scoreText);
    if (!Number.isInteger(score) || score < 0) {
      throw new Error(
        `${path}:${line}: score "${scoreText}" is not a non-negative integer; use 0, 1, 2, ...`,
      );
    }
    if (!qrels.has(qid)) qrels.set(qid, new Map());
    qrels.get(qid)!.set(did, score);
  }
  return qrels;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Load a BEIR folder (see module note). */
export async function loadBeir(
  dir: string,
  options: { name?: string; splitSeed?: number } = {},
): Promise<RetrievalDataset> {
  const corpus = await readJsonlTexts(join(dir, "corpus.jsonl"), true);
  const allQueries = await readJsonlTexts(join(dir, "queries.jsonl"), false);
  const docIds = new Set(corpus.map((d) => d.id));
  const queryIds = new Set(allQueries.map((q) => q.id));
  const qrels = {} as RetrievalDataset["qrels"];
  const queries = {} as RetrievalDataset["queries"];
  for (const split of ["train", "dev", "test"] as SplitName[]) {
    const path = join(dir, "qrels", `${split}.tsv`);
    if (!(await exists(path))) {
      if (split === "test") throw new Error(`${path}: not found; a BEIR folder needs qrels/test.tsv`);
      qrels[split] = new Map();
    } else qrels[split] = await readQrels(path, queryIds, docIds);
    queries[split] = allQueries.filter((q) => qrels[split].has(q.id));
  }
  return {
    task: "retrieve",
    name: options.name ?? `beir:${dir}`,
    splitSeed: options.splitSeed ?? DEFAULT_SPLIT_SEED,
    corpus: { train: corpus, dev: corpus, test: corpus },
    queries,
    qrels,
  };
}
