import assert from "node:assert/strict";
import { join } from "node:path";
import {
  parseRecord,
  readRecordFile,
  readRecords,
  recordPath,
  recordPrimary,
  type RunConfig,
  runIdOf,
  unsafeRunId,
  writeRecord,
} from "./record.ts";
import { InputError } from "../models/util/args.ts";
import { listTree, testConfig, testRecord, writeRawJson } from "./record_testing.ts";

const BASELINES = new URL("../baselines/", import.meta.url).pathname;

/** The error `fn` throws: an InputError of one line. */
function oneLineInputError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InputError, `not an InputError: ${err}`);
    assert.ok(!err.message.includes("\n"), `more than one line: ${err.message}`);
    return err.message;
  }
  assert.fail("no error thrown");
}

Deno.test("run ids: generated ones are safe; paths, dots and odd characters are not", async () => {
  assert.equal(unsafeRunId(await runIdOf(testConfig())), null);
  assert.equal(unsafeRunId(await runIdOf(testConfig({ method: "odd/me+thod", seed: -1 }))), null);
  for (const ok of ["a", "lm-lora-s0-1a62f4c3a2e8", "A.b_c-1", "x".repeat(128)]) {
    assert.equal(unsafeRunId(ok), null);
  }
  const bad = [
    "../victim",
    "../../x",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..",
    "a..b",
    ".hidden",
    "-flag",
    "",
    "x".repeat(129),
    "a\nb",
    "a b",
    "é",
  ];
  for (const id of bad) assert.match(unsafeRunId(id) ?? "", /not a safe file name/, JSON.stringify(id));
  assert.match(unsafeRunId(42) ?? "", /must be a string, not number/);
  assert.match(unsafeRunId(undefined) ?? "", /must be a string, not undefined/);
});

Deno.test("recordPath and writeRecord refuse an unsafe run id and write nothing", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "out");
    assert.equal(recordPath(dir, "abc"), join(dir, "abc.json"));
    assert.match(
      oneLineInputError(() => recordPath(dir, "../victim")),
      /"\.\.\/victim" is not a safe file name/,
    );
    await assert.rejects(writeRecord(dir, testRecord("../../x")), InputError);
    await assert.rejects(writeRecord(dir, testRecord("/tmp/abs")), InputError);
    assert.deepEqual(await listTree(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("every committed baseline record validates; policy.json is skipped, not an error", async () => {
  const records = await readRecords(BASELINES);
  assert.ok(records.length >= 10);
  for (const r of records) assert.equal(unsafeRunId(r.runId), null);
});

Deno.test("parseRecord: a valid record passes; null metrics read back as NaN; other JSON is not a record", () => {
  const r = testRecord("abc");
  const back = parseRecord(JSON.parse(JSON.stringify({ ...r, metrics: { accuracy: null } })), "/x/abc.json");
  assert.ok(Number.isNaN(back!.metrics.accuracy));
  assert.equal(back!.env.blas?.core, "Haswell");
  // Keys the schema does not name survive (a newer writer's fields are not dropped on rewrite).
  const extra = parseRecord({ ...JSON.parse(JSON.stringify(r)), futureField: [1] }, "/x/abc.json");
  assert.deepEqual((extra as unknown as { futureField: number[] }).futureField, [1]);
  assert.equal(parseRecord({ quality: {} }, "/x/policy.json"), null);
  assert.equal(parseRecord([1, 2], "/x/list.json"), null);
});

Deno.test("parseRecord: each defect is one line naming the file and what is wrong", () => {
  const raw = () => JSON.parse(JSON.stringify(testRecord("abc")));
  const cases: [(r: Record<string, unknown>) => void, RegExp][] = [
    [(r) => delete r.env, /\/x\/abc\.json: env: .*expected object/],
    [(r) => delete r.metrics, /\/x\/abc\.json: metrics: /],
    [(r) => (r.config = { ...(r.config as object), task: "dance" }), /\/x\/abc\.json: config\.task: /],
    [(r) => (r.metrics = { accuracy: "high" }), /\/x\/abc\.json: metrics\.accuracy: .*expected number/],
    [(r) => (r.status = "ok"), /\/x\/abc\.json: status: /],
    [(r) => ((r.timing as Record<string, unknown>).stepLatencyMs = null), /timing\.stepLatencyMs: /],
    [(r) => (r.runId = "../victim"), /\/x\/abc\.json: run id "\.\.\/victim" is not a safe file name/],
    [(r) => delete r.runId, /\/x\/abc\.json: run id must be a string, not undefined/],
    [(r) => (r.runId = "other"), /\/x\/abc\.json: run id "other" does not match the file name "abc\.json"/],
    [(r) => (r.schemaVersion = 2), /\/x\/abc\.json: schema version 2, this peft-bench reads 1/],
    [(r) => (r.schemaVersion = "1"), /\/x\/abc\.json: schemaVersion: /],
  ];
  for (const [edit, re] of cases) {
    const r = raw();
    edit(r);
    const message = oneLineInputError(() => parseRecord(r, "/x/abc.json"));
    assert.match(message, re);
    if (!/schema version 2/.test(message)) assert.match(message, /delete or replace the file, then rerun/);
  }
});

Deno.test("readRecords and readRecordFile: damaged JSON and invalid records are InputErrors naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readRecordFile(join(dir, "missing.json")), null);
    await writeRecord(dir, testRecord("good"));
    await writeRawJson(dir, "policy.json", { quality: {} });
    await writeRawJson(dir, ".hidden.json", "{");
    await Deno.mkdir(join(dir, "adapters.json"));
    assert.deepEqual((await readRecords(dir)).map((r) => r.runId), ["good"]);

    const broken = await writeRawJson(dir, "broken.json", '{"runId": "trunc');
    await assert.rejects(
      readRecords(dir),
      (e: Error) => e instanceof InputError && e.message.startsWith(`${broken}: not valid JSON`),
    );
    await Deno.remove(broken);
    const { env: _env, ...noEnv } = testRecord("noenv");
    const bad = await writeRawJson(dir, "noenv.json", noEnv);
    await assert.rejects(
      readRecords(dir),
      (e: Error) => e instanceof InputError && e.message.startsWith(`${bad}: env: `),
    );
    await assert.rejects(readRecords(join(dir, "nope")), /results folder not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("primary metric fields: optional (old records and baselines parse), derived from the table when absent", async () => {
  const old = testRecord();
  assert.equal(old.primaryMetric, undefined);
  const parsed = parseRecord(JSON.parse(JSON.stringify(old)), `/r/${old.runId}.json`)!;
  assert.equal(parsed.runId, old.runId);
  assert.deepEqual(recordPrimary(parsed), { name: "accuracy", direction: "higher" });
  const lm = testRecord("lm-x", (r) => (r.config.task = "lm"));
  assert.deepEqual(recordPrimary(lm), { name: "perplexity", direction: "lower" });
  const stored = testRecord("r1", (r) => {
    r.primaryMetric = "macroF1";
    r.primaryDirection = "higher";
  });
  const back = parseRecord(JSON.parse(JSON.stringify(stored)), "/r/r1.json")!;
  assert.deepEqual(recordPrimary(back), { name: "macroF1", direction: "higher" });
  // A stored direction the table contradicts loses: the table is the one place for it.
  assert.deepEqual(recordPrimary({ ...back, primaryMetric: "perplexity", primaryDirection: "higher" }), {
    name: "perplexity",
    direction: "lower",
  });
  const bad = JSON.parse(JSON.stringify(stored));
  bad.primaryDirection = "up";
  assert.match(oneLineInputError(() => parseRecord(bad, "/r/r1.json")), /primaryDirection/);
  // Committed baselines keep their run ids; their primary metric (stored since they were regenerated,
  // else derived) is the table's.
  for (const r of await readRecords(BASELINES)) {
    if (r.primaryMetric !== undefined) assert.equal(r.primaryMetric, recordPrimary(r).name);
    assert.equal(
      recordPrimary(r).name,
      { classify: "accuracy", retrieve: "mrr", lm: "perplexity" }[r.config.task],
    );
    assert.equal(await runIdOf(r.config as RunConfig), r.runId, "run id still derives from the config");
  }
});

Deno.test("trivial baselines and tokenizer coverage: optional fields, typed when present", () => {
  const coverage = {
    texts: 2,
    tokens: 10,
    words: 4,
    chars: 20,
    unknownTokens: 0,
    byteFallbackTokens: 1,
    unknownShare: 0,
    byteFallbackShare: 0.1,
    tokensPerWord: 2.5,
    tokensPerChar: 0.5,
    truncated: null,
    truncatedShare: null,
    maxLength: null,
  };
  const r = JSON.parse(JSON.stringify(testRecord("abc", (x) => {
    x.trivial = [{ name: "bm25", metrics: { mrr: 0.5 }, note: "k1 0.9" }];
    x.tokenizerCoverage = { test: coverage };
  })));
  const back = parseRecord(r, "/x/abc.json")!;
  assert.deepEqual(back.trivial, [{ name: "bm25", metrics: { mrr: 0.5 }, note: "k1 0.9" }]);
  assert.deepEqual(back.tokenizerCoverage, { test: coverage });
  assert.equal(parseRecord(JSON.parse(JSON.stringify(testRecord("abc"))), "/x/abc.json")!.trivial, undefined);
  assert.match(
    oneLineInputError(() => parseRecord({ ...r, trivial: [{ metrics: {} }] }, "/x/abc.json")),
    /trivial\.0\.name: /,
  );
  assert.match(
    oneLineInputError(() =>
      parseRecord({ ...r, tokenizerCoverage: { test: { ...coverage, tokens: "many" } } }, "/x/abc.json")
    ),
    /tokenizerCoverage\.test\.tokens: /,
  );
});
