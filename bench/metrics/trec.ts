/**
 * Parsers for TREC qrels and run files, as trec_eval reads them (get_qrels.c, get_trec_results.c):
 * - qrels: `qid iter docid rel` (4 whitespace-separated columns; iter is ignored),
 * - run:   `qid Q0 docid rank score tag` (6 columns; Q0, rank and tag are ignored, the ranking
 *   comes from the score; see ranking.ts).
 * Blank lines are skipped. Errors name the file and line and say what to fix.
 * @module
 */
import type { Qrels, Run } from "./ranking.ts";

function* fields(text: string): Generator<[number, string[]]> {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const cols = lines[i].trim().split(/\s+/);
    if (cols.length === 1 && cols[0] === "") continue;
    yield [i + 1, cols];
  }
}

function number(text: string, where: string, what: string): number {
  // Number("") is 0 and Number("0x1") is 1: accept only decimal notation.
  const v = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(v)) throw new Error(`${where}: ${what} "${text}" is not a number (fix the line)`);
  return v;
}

function add(
  into: Map<string, Map<string, number>>,
  qid: string,
  doc: string,
  value: number,
  where: string,
  firstLine: Map<string, number>,
  line: number,
): void {
  let docs = into.get(qid);
  if (!docs) into.set(qid, docs = new Map());
  const key = `${qid}\u0000${doc}`;
  if (docs.has(doc)) {
    throw new Error(
      `${where}: duplicate document "${doc}" for query "${qid}" (first on line ${
        firstLine.get(key)
      }); keep one line`,
    );
  }
  docs.set(doc, value);
  firstLine.set(key, line);
}

/**
 * Parse a qrels file: each line `qid iter docid rel` sets qrels[qid][docid] = rel (a number;
 * relevant when > 0). `file` names the source in error messages.
 */
export function parseQrels(text: string, file = "qrels"): Qrels {
  const qrels: Qrels = new Map();
  const firstLine = new Map<string, number>();
  for (const [line, cols] of fields(text)) {
    const where = `${file}:${line}`;
    if (cols.length !== 4) {
      throw new Error(`${where}: expected 4 columns "qid iter docid rel", got ${cols.length} (fix the line)`);
    }
    add(qrels, cols[0], cols[2], number(cols[3], where, "relevance"), where, firstLine, line);
  }
  return qrels;
}

/**
 * Parse a run file: each line `qid Q0 docid rank score tag` sets run[qid][docid] = score.
 * `file` names the source in error messages.
 */
export function parseRun(text: string, file = "run"): Run {
  const run: Run = new Map();
  const firstLine = new Map<string, number>();
  for (const [line, cols] of fields(text)) {
    const where = `${file}:${line}`;
    if (cols.length !== 6) {
      throw new Error(
        `${where}: expected 6 columns "qid Q0 docid rank score tag", got ${cols.length} (fix the line)`,
      );
    }
    add(run, cols[0], cols[2], number(cols[4], where, "score"), where, firstLine, line);
  }
  return run;
}
