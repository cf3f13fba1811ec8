import assert from "node:assert/strict";
import { join } from "node:path";
import { conflictCause, mergeRecords } from "./merge.ts";
import { type RunRecord, writeRecord } from "./record.ts";
import { listTree, testRecord, writeRawJson } from "./record_testing.ts";

function rec(runId: string, status: "success" | "failed", startTime: string, accuracy = 0.5): RunRecord {
  return {
    runId,
    status,
    metrics: status === "success" ? { accuracy } : {},
    env: { startTime },
  } as unknown as RunRecord;
}

Deno.test("merge: success beats failure, then the newer wins; differing successes are conflicts", () => {
  const { chosen, conflicts } = mergeRecords([
    {
      dir: "a",
      records: [
        rec("r1", "failed", "2024-01-02"),
        rec("r2", "success", "2024-01-01"),
        rec("r3", "success", "2024-01-01", 0.5),
        rec("r4", "failed", "2024-01-01"),
        rec("r5", "success", "2024-01-03", 0.7),
      ],
    },
    {
      dir: "b",
      records: [
        rec("r1", "success", "2024-01-01"), // older, but a success
        rec("r2", "failed", "2024-01-05"), // newer, but a failure
        rec("r3", "success", "2024-01-02", 0.5), // same metrics, newer: no conflict
        rec("r4", "failed", "2024-01-02"),
        rec("r5", "success", "2024-01-01", 0.9), // different metrics, older
        rec("r6", "success", "2024-01-01"),
      ],
    },
  ]);
  const from = Object.fromEntries([...chosen].map(([id, c]) => [id, `${c.dir}:${c.record.status}`]));
  assert.deepEqual(from, {
    r1: "b:success",
    r2: "a:success",
    r3: "b:success",
    r4: "b:failed",
    r5: "a:success",
    r6: "b:success",
  });
  assert.deepEqual(conflicts.map(({ runId, kept, dropped }) => ({ runId, kept, dropped })), [
    { runId: "r5", kept: "a", dropped: "b" },
  ]);
  assert.match(conflicts[0].cause, /^same environment: a nondeterminism/);
});

Deno.test("merge: a conflict between machines names what differs (CPU, BLAS core and threads, backend)", () => {
  const on = (cpu: string, core: string, threads: number, backend = "native") =>
    ({ env: { cpu, backend, blas: { core, threads } } }) as unknown as RunRecord;
  const cause = conflictCause(on("AMD EPYC 7B13 x2", "Zen", 2), on("Intel Xeon x2", "SkylakeX", 2));
  assert.match(
    cause,
    /^different environments \(CPU AMD EPYC 7B13 x2 vs Intel Xeon x2; BLAS core Zen vs SkylakeX\)/,
  );
  assert.match(cause, /deno task check/);
  assert.match(conflictCause(on("c", "Zen", 1), on("c", "Zen", 2)), /BLAS threads 1 vs 2/);
  assert.match(conflictCause(on("c", "Zen", 2, "wasm"), on("c", "Zen", 2)), /backend wasm vs native/);
  assert.match(conflictCause(on("c", "Zen", 2), on("c", "Zen", 2)), /^same environment/);
});

/** Run the merge CLI; returns its exit code and stderr. */
async function mergeCli(args: string[]): Promise<{ code: number; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("./merge.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr) };
}

/** A complete record of run `runId` with a status and start time. */
const full = (runId: string, status: "success" | "failed", startTime: string) =>
  testRecord(runId, (r) => {
    r.status = status;
    r.env.startTime = startTime;
  });

Deno.test("merge CLI: combines folders into --out and merging again writes nothing", async () => {
  const root = await Deno.makeTempDir();
  await writeRecord(`${root}/a`, full("r1", "failed", "2024-01-02"));
  await writeRecord(`${root}/b`, full("r1", "success", "2024-01-01"));
  await writeRecord(`${root}/b`, full("r2", "success", "2024-01-01"));
  const merge = async () => {
    const { code, err } = await mergeCli(["--out", `${root}/m`, `${root}/a`, `${root}/b`]);
    assert.equal(code, 0, err);
    return err;
  };
  assert.match(await merge(), /merged 2 runs \(2 success, 0 failed\).*2 written/);
  assert.equal(JSON.parse(await Deno.readTextFile(`${root}/m/r1.json`)).status, "success");
  assert.match(await merge(), /0 written/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("merge CLI: a record whose runId is '../../x' or that lacks a field is exit 2, writes nothing", async () => {
  const root = await Deno.makeTempDir();
  try {
    const shard = join(root, "deep", "shard");
    await writeRecord(shard, full("ok", "success", "2024-01-01"));
    const evil = await writeRawJson(shard, "x.json", full("../../x", "success", "2024-01-01"));
    const before = await listTree(root);
    const hostile = await mergeCli(["--out", join(root, "deep", "m"), shard]);
    assert.equal(hostile.code, 2, hostile.err);
    assert.equal(hostile.err.trim().split("\n").length, 1, hostile.err);
    assert.match(
      hostile.err,
      new RegExp(`^error: ${evil}: run id "\\.\\./\\.\\./x" is not a safe file name`),
    );
    assert.deepEqual(await listTree(root), before, "nothing written, inside or outside");

    await Deno.remove(evil);
    const { env: _env, ...noEnv } = full("noenv", "success", "2024-01-01");
    const bad = await writeRawJson(shard, "noenv.json", noEnv);
    const missing = await mergeCli(["--out", join(root, "deep", "m"), shard]);
    assert.equal(missing.code, 2, missing.err);
    assert.ok(missing.err.startsWith(`error: ${bad}: env: `), missing.err);
    assert.doesNotMatch(missing.err, /Cannot read properties/);
    assert.equal(await Deno.stat(join(root, "deep", "m")).then(() => true, () => false), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
