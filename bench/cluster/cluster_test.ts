import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../../models/fixtures.ts";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

Deno.test("slurm recipe: the second task of --array=4-7 runs shard 2/4 of the study (dry run)", async () => {
  const out = await new Deno.Command("bash", {
    args: ["bench/cluster/slurm_array.sbatch"],
    cwd: ROOT,
    env: {
      SLURM_SUBMIT_DIR: ROOT,
      SLURM_ARRAY_TASK_ID: "5",
      SLURM_ARRAY_TASK_MIN: "4", // --array=4-7: the second task is shard 2
      SLURM_ARRAY_TASK_COUNT: "4",
      SWEEP_EXTRA: `--dry-run --set model=${STORIES}`,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  assert.match(err, /plan: 648 runs .*; shard 2\/4: 162 runs/);
  // Round-robin: shard 2 of 4 starts at plan positions 1, 5, 9.
  assert.match(new TextDecoder().decode(out.stdout), /^#1 .*\n#5 .*\n#9 /);
});

Deno.test("k8s recipe: SHARDS matches completions and the shard is JOB_COMPLETION_INDEX + 1", async () => {
  const yaml = await Deno.readTextFile(new URL("./k8s_indexed_job.yaml", import.meta.url));
  const completions = /^\s*completions:\s*(\d+)/m.exec(yaml)?.[1];
  const shards = /name: SHARDS\s*\n\s*value: "(\d+)"/.exec(yaml)?.[1];
  assert.ok(completions && completions === shards, `completions ${completions} != SHARDS ${shards}`);
  assert.match(yaml, /completionMode: Indexed/);
  assert.match(yaml, /--shard "\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)\/\$SHARDS"/);
});
