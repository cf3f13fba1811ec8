import assert from "node:assert/strict";
import { csvField, recordsToCsv } from "./export_csv.ts";
import type { RunRecord } from "./record.ts";

/** A small RFC 4180 parser (quoted fields, doubled quotes, CRLF rows), independent of the writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"', i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") (row.push(field), field = "");
    else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      (row = [], field = "", i++);
    } else field += c;
  }
  assert.equal(field + row.join(""), "", "text must end with CRLF");
  return rows;
}

function record(runId: string, metrics: Record<string, number>, error?: string): RunRecord {
  return {
    schemaVersion: 1,
    runId,
    name: `lora q+v r8 seed0`,
    status: error ? "failed" : "success",
    error,
    config: {
      task: "classify",
      dataset: "wordnet-lex",
      model: "/m,odel.bin",
      method: "lora",
      methodOptions: { targets: "q,v,down", rank: 8, alpha: 16 },
      quant: { scheme: "nf4", doubleQuant: true },
      trainSize: null,
      trainPerClass: 8,
      seed: 2,
    },
    metrics,
    timing: { trainSeconds: 1.5, inferLatencyMs: { p50: 2 } },
    memory: { peakTrainBytes: 100, peakInferBytes: 50 },
    size: { trainableParams: 10, adapterBytes: 40, bitsPerFrozenParam: 4.5 },
    env: { startTime: "2024-01-01T00:00:00Z", backend: "wasm" },
  } as unknown as RunRecord;
}

Deno.test("csv: fields with commas, quotes and newlines round-trip through an RFC 4180 parse", () => {
  const nasty = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\r\nlf", '",\n"', "", "  spaced  "];
  const line = nasty.map(csvField).join(",") + "\r\n";
  assert.deepEqual(parseCsv(line), [nasty]);
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField(null), "");
  assert.equal(csvField(0.25), "0.25");
});

Deno.test("csv export: one row per record, one column per metric, union over records", () => {
  const csv = recordsToCsv([
    record("r1", { accuracy: 0.5, macroF1: 0.25 }),
    record("r2", { mrr: 0.75, rank: 3 }, 'loss became NaN at step 3; lower --lr, "really"\nsecond line'),
  ]);
  const [header, ...rows] = parseCsv(csv);
  assert.equal(rows.length, 2);
  const get = (row: string[], col: string) => row[header.indexOf(col)];
  for (
    const col of ["accuracy", "macroF1", "mrr", "metric_rank", "train_seconds", "peak_train_bytes", "error"]
  ) {
    assert.ok(header.includes(col), `missing column ${col}`);
  }
  assert.equal(new Set(header).size, header.length, "duplicate column names");
  assert.equal(get(rows[0], "accuracy"), "0.5");
  assert.equal(get(rows[0], "mrr"), "");
  assert.equal(get(rows[1], "metric_rank"), "3");
  assert.equal(get(rows[0], "rank"), "8");
  assert.equal(get(rows[0], "targets"), "q,v,down");
  assert.equal(get(rows[0], "model"), "/m,odel.bin");
  assert.equal(get(rows[0], "quant"), "nf4");
  assert.equal(get(rows[0], "double_quant"), "true");
  assert.equal(get(rows[0], "train_per_class"), "8");
  assert.equal(get(rows[0], "train_size"), "");
  assert.equal(get(rows[0], "bits_per_frozen_param"), "4.5");
  assert.equal(get(rows[1], "status"), "failed");
  assert.equal(get(rows[1], "error"), 'loss became NaN at step 3; lower --lr, "really"\nsecond line');
});
