import assert from "node:assert/strict";
import { join } from "node:path";
import { isFinished } from "./sweep_runner.ts";
import { writeRecord } from "./record.ts";
import { InputError } from "../models/util/args.ts";
import { listTree, testRecord, writeRawJson } from "./record_testing.ts";

Deno.test("resume: a valid successful record is finished; a failed or missing one reruns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeRecord(dir, testRecord("done"));
    await writeRecord(dir, testRecord("bad", (r) => (r.status = "failed")));
    assert.equal(await isFinished(dir, "done"), true);
    assert.equal(await isFinished(dir, "bad"), false);
    assert.equal(await isFinished(dir, "never"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resume: a damaged or invalid record is one InputError naming the file, never trusted as done", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, unknown, RegExp][] = [
      ["trunc", '{"runId": "trunc', /trunc\.json: not valid JSON/],
      ["bare", { runId: "bare", status: "success" }, /bare\.json: schemaVersion: /],
      ["moved", testRecord("../../x"), /moved\.json: run id "\.\.\/\.\.\/x" is not a safe file name/],
      [
        "other",
        testRecord("someone-else"),
        /other\.json: run id "someone-else" does not match the file name/,
      ],
      ["notrec", { hello: 1 }, /notrec\.json: JSON without a run id or schema version/],
    ];
    for (const [id, content, re] of cases) {
      const path = await writeRawJson(dir, `${id}.json`, content);
      await assert.rejects(
        isFinished(dir, id),
        (e: Error) =>
          e instanceof InputError && e.message.startsWith(path) && re.test(e.message) &&
          !e.message.includes("\n"),
        id,
      );
    }
    // An unsafe planned id never becomes a path either.
    await assert.rejects(isFinished(dir, "../escape"), /not a safe file name/);
    assert.deepEqual(await listTree(dir), cases.map(([id]) => `${id}.json`).sort());
    assert.equal(await Deno.stat(join(dir, "..", "x.json")).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
