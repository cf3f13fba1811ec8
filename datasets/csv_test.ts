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
