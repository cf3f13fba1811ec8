/**
 * Parsers for TREC qrels and run files, as trec_eval 10 reads them (get_qrels.c, get_trec_results.c):
 * - qrels: `qid iter docid rel` (4 whitespace-separated columns; iter is ignored). The relevance is
 *   an integer, read as C's `atol` does: the leading integer part of the text, so "2.7" -> 2,
 *   "0.5" -> 0, "-1" -> -1, "1e3" -> 1. Lines whose first non-blank character is `#` are comments
 *   and skipped.
 * - run:   `qid Q0 docid rank score tag` (at least 6 columns; Q0, rank, tag and any further trailing
 *   columns are ignored, the ranking comes from the score; see ranking.ts).
 *
 * Blank lines are skipped. Where trec_eval would silently read garbage (atol("high") is 0), these
 * parsers stop instead: a relevance or score must be a decimal number. Errors name the file and line
 * and say what to fix.
 * @module
 */
import type { Qrels, Run } from "./ranking.ts";

function* fields(text: string, comments = false): Generator<[number, string[]]> {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const cols = lines[i].trim().split(/\s+/);
    if (cols.length === 1 && cols[0] === "") continue;
    if (comments && cols[0].startsWith("#")) continue;
    yield [i + 1, cols];
  }
}

function number(text: string, where: string, what: string): number {
  // Number("") is 0 and Number("0x1") is 1: accept only decimal notation.
  const v = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(v)) throw new Error(`${where}: ${what} "${text}" is not a number (fix the line)`);
  return v;
}

/**
 * A relevance level as trec_eval reads it, with C's `atol`: the leading `[+-]digits` of the text
 * (0 when there are none, as for ".5"), i.e. the decimal value truncated toward zero for plain
 * decimals ("2.7" -> 2, "-1.5" -> -1) and the mantissa's integer part with an exponent ("1e3" -> 1).
 * Text that is not a decimal number throws (`where` names the line).
 */
export function relevanceLevel(text: string, where = "qrels"): number {
  number(text, where, "relevance");
  const v = parseInt(text.match(/^[+-]?\d*/)![0], 10);
  return Number.isNaN(v) || v === 0 ? 0 : v; // "", "+", "-" -> 0; -0 -> 0
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
 * Parse a qrels file: each line `qid iter docid rel` sets qrels[qid][docid] = rel, an integer
 * read as trec_eval does ({@link relevanceLevel}; relevant when > 0). `#` comment lines are skipped.
 * `file` names the source in error messages.
 */
export function parseQrels(text: string, file = "qrels"): Qrels {
  const qrels: Qrels = new Map();
  const firstLine = new Map<string, number>();
  for (const [line, cols] of fields(text, true)) {
    const where = `${file}:${line}`;
    if (cols.length !== 4) {
      throw new Error(`${where}: expected 4 columns "qid iter docid rel", got ${cols.length} (fix the line)`);
    }
    add(qrels, cols[0], cols[2], relevanceLevel(cols[3], where), where, firstLine, line);
  }
  return qrels;
}

/**
 * Parse a run file: each line `qid Q0 docid rank score tag` sets run[qid][docid] = score; columns
 * after the sixth are ignored, as trec_eval does. `file` names the source in error messages.
 */
export function parseRun(text: string, file = "run"): Run {
  const run: Run = new Map();
  const firstLine = new Map<string, number>();
  for (const [line, cols] of fields(text)) {
    const where = `${file}:${line}`;
    if (cols.length < 6) {
      throw new Error(
        `${where}: expected at least 6 columns "qid Q0 docid rank score tag", got ${cols.length} (fix the line)`,
      );
    }
    add(run, cols[0], cols[2], number(cols[4], where, "score"), where, firstLine, line);
  }
  return run;
}
