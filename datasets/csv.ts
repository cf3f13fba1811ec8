/**
 * RFC 4180 CSV parsing (no dependency): quoted fields may hold the delimiter, `""` and line
 * breaks; records end at LF or CRLF; a leading BOM is dropped. Stricter than RFC on purpose:
 * a stray quote inside an unquoted field, text after a closing quote, an unterminated quote or a
 * record with the wrong number of fields is an error naming file and line, since each usually
 * means the file is not the CSV it looks like.
 * @module
 */

/** One record with the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Parse CSV text into records (the header is the first record). Blank lines are skipped. */
export function parseCsv(text: string, file: string, delimiter = ","): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let recordStarted = false; // distinguishes a blank line from a record of one empty field
  let inField = false; // the current field has consumed characters (a quote may only open a field)
  const endField = () => {
    fields.push(field);
    field = "";
    inField = false;
  };
  const endRecord = () => {
    if (recordStarted) {
      endField();
      records.push({ line: recordLine, fields });
    }
    fields = [];
    recordStarted = false;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"' && !inField) {
      // Quoted field.
      const startLine = line;
      i++;
      for (;;) {
        if (i >= text.length) {
          throw new Error(`${file}:${startLine}: unterminated quoted field; close it with "`);
        }
        const q = text[i];
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === "\n") line++;
        field += q;
        i++;
      }
      inField = recordStarted = true;
      const next = text[i];
      if (
        next !== undefined && next !== delimiter && next !== "\n" && !(next === "\r" && text[i + 1] === "\n")
      ) {
        throw new Error(
          `${file}:${line}: text after a closing quote; quote the whole field and double inner quotes ("")`,
        );
      }
      continue;
    }
    if (c === delimiter) {
      endField();
      recordStarted = true;
      i++;
    } else if (c === "\n" || (c === "\r" && text[i + 1] === "\n")) {
      endRecord();
      i += c === "\r" ? 2 : 1;
      line++;
      recordLine = line;
    } else if (c === '"') {
      throw new Error(
        `${file}:${line}: quote inside an unquoted field; quote the field and double inner quotes ("")`,
      );
    } else {
      field += c;
      inField = recordStarted = true;
      i++;
    }
  }
  endRecord();
  if (records.length > 0) {
    const width = records[0].fields.length;
    for (const r of records) {
      if (r.fields.length !== width) {
        throw new Error(
          `${file}:${r.line}: ${r.fields.length} fields but the header has ${width}; quote fields that contain "${delimiter}"`,
        );
      }
    }
  }
  return records;
}
