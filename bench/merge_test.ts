import assert from "node:assert/strict";
import { mergeRecords } from "./merge.ts";
import type { RunRecord } from "./record.ts";

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
  assert.deepEqual(conflicts, [{ runId: "r5", kept: "a", dropped: "b" }]);
});

Deno.test("merge CLI: combines folders into --out and merging again writes nothing", async () => {
  const root = await Deno.makeTempDir();
  const full = (r: RunRecord) => ({ ...r, schemaVersion: 1 });
  await Deno.mkdir(`${root}/a`);
  await Deno.mkdir(`${root}/b`);
  await Deno.writeTextFile(`${root}/a/r1.json`, JSON.stringify(full(rec("r1", "failed", "2024-01-02"))));
  await Deno.writeTextFile(`${root}/b/r1.json`, JSON.stringify(full(rec("r1", "success", "2024-01-01"))));
  await Deno.writeTextFile(`${root}/b/r2.json`, JSON.stringify(full(rec("r2", "success", "2024-01-01"))));
  const merge = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        new URL("./merge.ts", import.meta.url).pathname,
        "--out",
        `${root}/m`,
        `${root}/a`,
        `${root}/b`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stderr);
  };
  assert.match(await merge(), /merged 2 runs \(2 success, 0 failed\).*2 written/);
  assert.equal(JSON.parse(await Deno.readTextFile(`${root}/m/r1.json`)).status, "success");
  assert.match(await merge(), /0 written/);
  await Deno.remove(root, { recursive: true });
});
