/**
 * RFC 4180 CSV parsing (no dependency): quoted fields may hold the delimiter, `""` and line
 * breaks; records end at LF or CRLF; a leading BOM is dropped. Stricter than RFC on purpose:
 * a stray quote inside an unquoted field, text after a closing quote, an unterminated quote or a
 * record with the wrong number of fields is an error naming file and line, since each usually
 * means the file is not the CSV it looks like.
 *
 * Fields are cut out of the text with `indexOf` and `slice`, never built a character at a time,
 * so a field of many megabytes costs about its own size.
 * @module
 */

/** One record with the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** One parsed field and the index just past it (at a delimiter, a line break or the end). */
interface Field {
  value: string;
  end: number;
}

/** Number of `\n` in `text[from, to)`. */
function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf("\n", from); i !== -1 && i < to; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** Cuts records out of CSV text; one instance per parse. */
class CsvScanner {
  /** Current 1-based line (advanced past line breaks, including those inside quoted fields). */
  line = 1;
  #nextDelimiter = -1;
  #nextNewline = -1;

  constructor(readonly text: string, readonly file: string, readonly delimiter: string) {}

  /** Index of the first `what` at or after `from` (text length when none), cached per kind. */
  #next(kind: "delimiter" | "newline", from: number): number {
    const cached = kind === "delimiter" ? this.#nextDelimiter : this.#nextNewline;
    if (cached >= from) return cached;
    const found = this.text.indexOf(kind === "delimiter" ? this.delimiter : "\n", from);
    const at = found === -1 ? this.text.length : found;
    if (kind === "delimiter") this.#nextDelimiter = at;
    else this.#nextNewline = at;
    return at;
  }

  /** Whether a line break (LF or CRLF) starts at `i`. */
  isLineBreak(i: number): boolean {
    const c = this.text.charCodeAt(i);
    return c === 10 || (c === 13 && this.text.charCodeAt(i + 1) === 10);
  }

  /** The field starting at `i`: quoted when it opens with `"`, else up to the next delimiter or line break. */
  field(i: number): Field {
    return this.text.charCodeAt(i) === 34 ? this.#quoted(i) : this.#unquoted(i);
  }

  #unquoted(i: number): Field {
    const { text } = this;
    const end = Math.min(this.#next("delimiter", i), this.#next("newline", i));
    // A CR right before the LF belongs to the CRLF line break, not to the field.
    const stop =
      end < text.length && end > i && text.charCodeAt(end) === 10 && text.charCodeAt(end - 1) === 13
        ? end - 1
        : end;
    const value = text.slice(i, stop);
    if (value.includes('"')) {
      throw new Error(
        `${this.file}:${this.line}: quote inside an unquoted field; quote the field and double inner quotes ("")`,
      );
    }
    return { value, end: stop };
  }

  #quoted(open: number): Field {
    const { text } = this;
    const startLine = this.line;
    const parts: string[] = [];
    let from = open + 1;
    for (;;) {
      const q = text.indexOf('"', from);
      if (q === -1) throw new Error(`${this.file}:${startLine}: unterminated quoted field; close it with "`);
      this.line += countNewlines(text, from, q);
      if (text.charCodeAt(q + 1) !== 34) {
        parts.push(text.slice(from, q));
        const end = q + 1;
        if (end < text.length && !text.startsWith(this.delimiter, end) && !this.isLineBreak(end)) {
          throw new Error(
            `${this.file}:${this.line}: text after a closing quote; quote the whole field and double inner quotes ("")`,
          );
        }
        return { value: parts.length === 1 ? parts[0] : parts.join(""), end };
      }
      parts.push(text.slice(from, q + 1)); // a doubled quote stands for one
      from = q + 2;
    }
  }

  /** The record starting at `i` (not on a blank line) and the index of the next record. */
  record(i: number): { record: CsvRecord; next: number } {
    const { text, delimiter } = this;
    const record: CsvRecord = { line: this.line, fields: [] };
    for (;;) {
      const f = this.field(i);
      record.fields.push(f.value);
      i = f.end;
      if (i >= text.length) return { record, next: i };
      if (text.startsWith(delimiter, i)) {
        i += delimiter.length;
        continue;
      }
      this.line++;
      return { record, next: i + (text.charCodeAt(i) === 13 ? 2 : 1) };
    }
  }
}

/** Throw unless every record has as many fields as the header. */
function checkWidths(records: CsvRecord[], file: string, delimiter: string): void {
  if (records.length === 0) return;
  const width = records[0].fields.length;
  for (const r of records) {
    if (r.fields.length !== width) {
      throw new Error(
        `${file}:${r.line}: ${r.fields.length} fields but the header has ${width}; quote fields that contain "${delimiter}"`,
      );
    }
  }
}

/** Parse CSV text into records (the header is the first record). Blank lines are skipped. */
export function parseCsv(text: string, file: string, delimiter = ","): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const scanner = new CsvScanner(text, file, delimiter);
  const records: CsvRecord[] = [];
  let i = 0;
  while (i < text.length) {
    if (scanner.isLineBreak(i)) {
      i += text.charCodeAt(i) === 13 ? 2 : 1;
      scanner.line++;
      continue;
    }
    const { record, next } = scanner.record(i);
    records.push(record);
    i = next;
  }
  checkWidths(records, file, delimiter);
  return records;
}
