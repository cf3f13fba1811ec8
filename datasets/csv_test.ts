import assert from "node:assert/strict";
import { parseCsv } from "./csv.ts";

Deno.test("csv: quotes, doubled quotes, embedded delimiter and newline, CRLF, BOM", () => {
  const text = '\ufeffid,text,label\r\n1,"hello, world",a\r\n2,"say ""hi""\nthere",b\n\n3,,c\n';
  const r = parseCsv(text, "t.csv");
  assert.deepEqual(r.map((x) => x.fields), [
    ["id", "text", "label"],
    ["1", "hello, world", "a"],
    ["2", 'say "hi"\nthere', "b"],
    ["3", "", "c"],
  ]);
  assert.deepEqual(r.map((x) => x.line), [1, 2, 3, 6]);
});

Deno.test("csv: tab delimiter and quoted empty field", () => {
  assert.deepEqual(parseCsv('a\tb\n""\tx', "t.tsv", "\t").map((x) => x.fields), [["a", "b"], ["", "x"]]);
});

Deno.test("csv: malformed input names the line", () => {
  assert.throws(
    () => parseCsv('a,b\n1,"open\n2,3\n', "t.csv"),
    /^Error: t\.csv:2: unterminated quoted field/,
  );
  assert.throws(() => parseCsv('a,b\n1,x"y\n', "t.csv"), /t\.csv:2: quote inside an unquoted field/);
  assert.throws(() => parseCsv('a,b\n1,"x"y\n', "t.csv"), /t\.csv:2: text after a closing quote/);
  assert.throws(() => parseCsv("a,b\n1,2\n3,4,5\n", "t.csv"), /t\.csv:3: 3 fields but the header has 2/);
});

Deno.test("csv: RFC 4180 edge cases", () => {
  const fields = (text: string, d = ",") => parseCsv(text, "t.csv", d).map((x) => x.fields);
  // Doubled quotes anywhere in a quoted field, including at its ends.
  assert.deepEqual(fields('a,b\n"""x""","y"""""\n'), [["a", "b"], ['"x"', 'y""']]);
  // Line breaks inside quotes are kept as written (LF and CRLF); the record starts on its first line.
  const r = parseCsv('a,b\r\n"1\r\n2","3\n4"\r\n5,6', "t.csv");
  assert.deepEqual(r.map((x) => x.fields), [["a", "b"], ["1\r\n2", "3\n4"], ["5", "6"]]);
  assert.deepEqual(r.map((x) => x.line), [1, 2, 5]);
  // A trailing line break adds no record, with or without CR; no trailing break keeps the last record.
  assert.deepEqual(fields("a\n1\n"), [["a"], ["1"]]);
  assert.deepEqual(fields("a\r\n1\r\n"), [["a"], ["1"]]);
  assert.deepEqual(fields("a\r\n1"), [["a"], ["1"]]);
  // Empty fields: between delimiters, at the end of a record and of the file, quoted.
  assert.deepEqual(fields('a,b,c\n,,\n"",x,""\r\n1,2,'), [["a", "b", "c"], ["", "", ""], ["", "x", ""], [
    "1",
    "2",
    "",
  ]]);
  // A CR that is not part of CRLF is data; CRLF blank lines are skipped but counted.
  assert.deepEqual(fields("a\rb,c\n"), [["a\rb", "c"]]);
  assert.deepEqual(parseCsv("a\r\n\r\n\n1\r\n", "t.csv").map((x) => x.line), [1, 4]);
  // A closing quote followed by CRLF or EOF; only a BOM at the very start is dropped.
  assert.deepEqual(fields('\ufeff"a"\r\n"b"'), [["a"], ["b"]]);
  assert.deepEqual(fields('x\n"\ufeffy"'), [["x"], ["\ufeffy"]]);
  assert.deepEqual(fields(""), []);
  // Line numbers in errors count the breaks inside earlier quoted fields.
  assert.throws(() => fields('a\n"1\n2"\nx"\n'), /t\.csv:4: quote inside an unquoted field/);
  assert.throws(() => fields('a\n"1\n2"x\n'), /t\.csv:3: text after a closing quote/);
  assert.throws(() => fields('a\n"1\n2"\r\r\n'), /t\.csv:3: text after a closing quote/);
});

Deno.test("csv: a 20 MB field, quoted and unquoted, comes back whole without a copy per character", () => {
  const big = "0123456789abcdefghij".repeat(1 << 20); // 20 MiB
  const quoted = big.slice(0, 1 << 20) + '""\n' + big.slice(1 << 20);
  const text = `id,text\n1,${big}\n2,"${quoted}"\n3,"${big}"\r\n`;
  const rss = Deno.memoryUsage().rss;
  const r = parseCsv(text, "big.csv");
  // Slicing costs about the fields' own size (~40 MiB here); appending a character at a time
  // took over 1 GiB for this text.
  const grown = (Deno.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(grown < 400, `resident memory grew by ${grown.toFixed(0)} MiB while parsing 80 MiB of fields`);
  assert.equal(r.length, 4);
  assert.equal(r[1].fields[1].length, big.length);
  assert.ok(r[1].fields[1] === big);
  assert.ok(r[2].fields[1] === big.slice(0, 1 << 20) + '"\n' + big.slice(1 << 20));
  assert.ok(r[3].fields[1] === big);
  assert.deepEqual(r.map((x) => [x.line, x.fields[0]]), [[1, "id"], [2, "1"], [3, "2"], [5, "3"]]);
});

Deno.test("csv: a single-column file: the delimiter never occurs", () => {
  const rows = Array.from({ length: 200_000 }, (_, i) => `row${i}`);
  const r = parseCsv("h\n" + rows.join("\n"), "one.csv");
  assert.equal(r.length, rows.length + 1);
  assert.equal(r[r.length - 1].fields[0], "row199999");
});

/** The character-at-a-time parser this module replaced, kept as the oracle for the random test. */
function referenceParse(text: string, file: string, delimiter = ","): string[][] | string {
  try {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const records: { line: number; fields: string[] }[] = [];
    let fields: string[] = [], field = "", line = 1, recordLine = 1, i = 0;
    let recordStarted = false, inField = false;
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
        const startLine = line;
        i++;
        for (;;) {
          if (i >= text.length) throw new Error(`${file}:${startLine}: unterminated`);
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
          next !== undefined && next !== delimiter && next !== "\n" &&
          !(next === "\r" && text[i + 1] === "\n")
        ) {
          throw new Error(`${file}:${line}: text after a closing quote`);
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
        throw new Error(`${file}:${line}: quote inside an unquoted field`);
      } else {
        field += c;
        inField = recordStarted = true;
        i++;
      }
    }
    endRecord();
    return records.map((r) => [String(r.line), ...r.fields]);
  } catch (err) {
    return (err as Error).message.split(";")[0].replace(/: (unterminated).*/, ": $1");
  }
}

Deno.test("csv: agrees with the character-at-a-time reference on random input", () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const alphabet = ["a", "b", ",", '"', '""', "\n", "\r\n", "\r", " ", "\t", "\ufeff"];
  for (let t = 0; t < 5000; t++) {
    const text = Array.from({ length: rand(24) }, () => alphabet[rand(alphabet.length)]).join("");
    const delimiter = rand(4) === 0 ? "\t" : ",";
    const want = referenceParse(text, "f.csv", delimiter);
    let got: string[][] | string;
    try {
      // Width is checked after parsing; compare the records themselves.
      got = parseCsv(text, "f.csv", delimiter).map((r) => [String(r.line), ...r.fields]);
    } catch (err) {
      const msg = (err as Error).message;
      got = /fields but the header has/.test(msg)
        ? "width"
        : msg.split(";")[0].replace(/: (unterminated).*/, ": $1");
    }
    if (got === "width") {
      assert.ok(Array.isArray(want) && new Set(want.map((r) => r.length)).size > 1, JSON.stringify(text));
    } else assert.deepEqual(got, want, JSON.stringify(text));
  }
});
