import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { testRecord } from "./record_testing.ts";
import { fileURLToPath } from "node:url";
import { expandPlan, parseSweep } from "./sweep_plan.ts";
import { pendingRuns } from "./sweep_runner.ts";

const SWEEP = fileURLToPath(new URL("./sweep.ts", import.meta.url));
const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));
// The `deno task sweep` permission set.
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-ffi",
  "--allow-run=git,deno",
];

/** A tiny plan: each run takes ~1-3 s on stories260K. */
const tiny = (seeds: number[]) => ({
  fixed: { model: STORIES, "train-per-class": 2, epochs: 1, "max-eval": 20, rank: 4 },
  factors: { seed: seeds },
});

function sweep(file: string, out: string, extra: string[] = []): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: ["run", "--config", DENO_JSON, ...PERMS, SWEEP, file, "--out", out, ...extra],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function jsonFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
  return names.sort();
}

/** Every .json in `dir` parses; returns runId -> startTime of the successful records. */
async function successes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await jsonFiles(dir)) {
    const text = await Deno.readTextFile(`${dir}/${name}`);
    let rec;
    try {
      rec = JSON.parse(text);
    } catch {
      assert.fail(`${name} is not valid JSON after the kill`);
    }
    if (rec.status === "success") out.set(rec.runId, rec.env.startTime);
  }
  return out;
}

Deno.test("resume: only runs recorded as successful are skipped (failed ones rerun; a damaged record stops the sweep, naming it)", async () => {
  const dir = await Deno.makeTempDir();
  const plan = await expandPlan(parseSweep(tiny([0, 1, 2, 3])));
  const [a, b, c] = plan.runs;
  await Deno.writeTextFile(`${dir}/${a.runId}.json`, JSON.stringify(testRecord(a.runId)));
  await Deno.writeTextFile(
    `${dir}/${b.runId}.json`,
    JSON.stringify(testRecord(b.runId, (r) => (r.status = "failed"))),
  );
  const { pending, finished } = await pendingRuns(plan.runs, dir);
  assert.deepEqual(finished.map((r) => r.index), [0]);
  assert.deepEqual(pending.map((r) => r.index), [1, 2, 3]);
  await Deno.writeTextFile(`${dir}/${c.runId}.json`, '{"runId": "trunc');
  await assert.rejects(pendingRuns(plan.runs, dir), new RegExp(`${c.runId}\\.json`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep: SIGKILL loses at most the run in flight; a rerun completes the plan without redoing finished runs", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/tiny.json`;
  const out = `${dir}/out`;
  await Deno.writeTextFile(file, JSON.stringify(tiny([0, 1, 2, 3, 4])));
  const plan = await expandPlan(parseSweep(tiny([0, 1, 2, 3, 4])));

  const child = sweep(file, out);
  const deadline = Date.now() + 120_000;
  while ((await jsonFiles(out).catch(() => [])).length === 0) {
    assert.ok(Date.now() < deadline, "no record appeared within 120 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  await child.stdout.cancel();
  await child.stderr.cancel();

  const before = await successes(out);
  assert.ok(before.size >= 1 && before.size < plan.runs.length, `killed too late: ${before.size} done`);

  const rerun = await sweep(file, out).output();
  const log = new TextDecoder().decode(rerun.stderr);
  assert.equal(rerun.code, 0, log);
  assert.match(log, new RegExp(`resume: ${before.size} already recorded as successful`));
  assert.match(log, new RegExp(`${plan.runs.length - before.size} ok, 0 failed, ${before.size} skipped`));
  const after = await successes(out);
  assert.deepEqual([...after.keys()].sort(), plan.runs.map((r) => r.runId).sort());
  // No duplicate work: the records finished before the kill were not rewritten.
  for (const [id, start] of before) assert.equal(after.get(id), start, `${id} was run again`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep --jobs 2: worker processes run a shard; a rerun skips everything", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/tiny.json`;
  await Deno.writeTextFile(file, JSON.stringify(tiny([0, 1, 2, 3])));
  const plan = await expandPlan(parseSweep(tiny([0, 1, 2, 3])));
  const first = await sweep(file, `${dir}/out`, ["--jobs", "2", "--shard", "2/2"]).output();
  const log = new TextDecoder().decode(first.stderr);
  assert.equal(first.code, 0, log);
  assert.match(log, /shard 2\/2: 2 runs/);
  const done = await successes(`${dir}/out`);
  assert.deepEqual([...done.keys()].sort(), [plan.runs[1].runId, plan.runs[3].runId].sort());
  const again = await sweep(file, `${dir}/out`, ["--jobs", "2", "--shard", "2/2"]).output();
  assert.match(new TextDecoder().decode(again.stderr), /0 ok, 0 failed, 2 skipped/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep: an invalid plan entry stops the sweep before any run, exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/bad.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({ ...tiny([0]), factors: { seed: [0], targets: ["q+v", "nonsense"] } }),
  );
  const res = await sweep(file, `${dir}/out`).output();
  const err = new TextDecoder().decode(res.stderr);
  assert.equal(res.code, 2, err);
  assert.match(err, /error: plan run #1 \(seed=0 targets=nonsense\)/);
  assert.equal((await jsonFiles(`${dir}/out`).catch(() => [])).length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep: a failing run is recorded and the sweep goes on (exit 1); a rerun retries only it", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/mixed.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      ...tiny([0]),
      factors: {
        variant: [
          { name: "diverge", lr: 1e30, "head-lr": 1e30, clip: 0, steps: 4 },
          { name: "ok", lr: 0.002 },
        ],
      },
    }),
  );
  const first = await sweep(file, `${dir}/out`).output();
  const log = new TextDecoder().decode(first.stderr);
  assert.equal(first.code, 1, log);
  assert.match(log, /FAILED: loss became/);
  assert.match(log, /1 ok, 1 failed, 0 skipped/);
  const records = await Promise.all(
    (await jsonFiles(`${dir}/out`)).map(async (n) => JSON.parse(await Deno.readTextFile(`${dir}/out/${n}`))),
  );
  assert.deepEqual(records.map((r) => r.status).sort(), ["failed", "success"]);
  const again = await sweep(file, `${dir}/out`).output();
  assert.match(new TextDecoder().decode(again.stderr), /0 ok, 1 failed, 1 skipped/);
  await Deno.remove(dir, { recursive: true });
});
