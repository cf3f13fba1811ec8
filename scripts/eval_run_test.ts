import assert from "node:assert/strict";
import { join } from "node:path";
import { evalRun, formatTrecEval } from "./eval_run.ts";

// The ranx README example in TREC format, plus: q_5 judged but with nothing relevant (trec_eval
// keeps it, scoring 0) and q_4 only in the qrels (ignored, or 0 with --complete). Rank columns
// are deliberately scrambled: trec_eval ranks by score and ignores them. A comment line in the
// qrels and extra trailing columns in the run are ignored, as trec_eval does.
const QRELS = `# ranx README example
q_1 0 d_12 5
q_1 0 d_25 3
q_2 0 d_11 6
q_2 0 d_22 1
q_4 0 d_1 1
q_5 0 d_1 0
`;
const RUN = `q_1 Q0 d_12 6 0.9 t
q_1 Q0 d_23 5 0.8 t
q_1 Q0 d_25 4 0.7 t
q_1 Q0 d_36 3 0.6 t
q_1 Q0 d_32 2 0.5 t
q_1 Q0 d_35 1 0.4 t
q_2 Q0 d_12 1 0.9 t
q_2 Q0 d_11 1 0.8 t
q_2 Q0 d_25 1 0.7 t
q_2 Q0 d_36 1 0.6 t
q_2 Q0 d_22 1 0.5 t
q_2 Q0 d_35 1 0.4 t extra columns
q_5 Q0 d_1 1 1.0 t
`;

// Hand-computed, averaged over num_q = 3 (q_1, q_2, q_5):
// AP: q_1 (1 + 2/3)/2, q_2 (1/2 + 2/5)/2, q_5 0 -> 0.42778. RR: (1 + 1/2 + 0)/3 = 0.5.
// P_5 = (2/5 + 2/5)/3, P_10 = (2/10 + 2/10)/3, recall_5 = recall_10 = (1 + 1)/3.
// NDCG (all relevant docs are in the top 5, so cut 5, cut 10 and full agree):
// q_1 (5 + 3/log2 4)/(5 + 3/log2 3) = 0.943014, q_2 (6/log2 3 + 1/log2 6)/(6 + 1/log2 3) = 0.629238.
const EXPECTED = [
  "num_q                 \tall\t3",
  "map                   \tall\t0.4278",
  "recip_rank            \tall\t0.5000",
  "P_5                   \tall\t0.2667",
  "P_10                  \tall\t0.1333",
  "recall_5              \tall\t0.6667",
  "recall_10             \tall\t0.6667",
  "ndcg                  \tall\t0.5241",
  "ndcg_cut_5            \tall\t0.5241",
  "ndcg_cut_10           \tall\t0.5241",
].join("\n") + "\n";

async function writeFixtures(): Promise<{ dir: string; qrels: string; run: string }> {
  const dir = await Deno.makeTempDir({ prefix: "eval_run_test_" });
  const qrels = join(dir, "test.qrels"), run = join(dir, "test.run");
  await Deno.writeTextFile(qrels, QRELS);
  await Deno.writeTextFile(run, RUN);
  return { dir, qrels, run };
}

Deno.test("eval-run prints trec_eval lines with hand-computed values", async () => {
  const f = await writeFixtures();
  try {
    assert.equal(await evalRun(["--qrels", f.qrels, "--run", f.run]), EXPECTED);
    const json = JSON.parse(await evalRun(["--qrels", f.qrels, "--run", f.run, "--json"]));
    assert.equal(json.num_q, 3);
    assert.ok(Math.abs(json.map - (((1 + 2 / 3) / 2 + 0.45) / 3)) < 1e-12);
    assert.equal(json.recip_rank, 0.5);
    assert.ok(Math.abs(json.ndcg_cut_10 - 0.5240840732851301) < 1e-12);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("eval-run --complete averages over every qrels query, 0 for q_4 missing from the run (trec_eval -c)", async () => {
  const f = await writeFixtures();
  try {
    const json = JSON.parse(await evalRun(["--qrels", f.qrels, "--run", f.run, "--complete", "--json"]));
    // The same per-query values as EXPECTED, summed over q_1, q_2 (q_4, q_5 score 0), over num_q = 4.
    assert.equal(json.num_q, 4);
    assert.ok(Math.abs(json.map - ((1 + 2 / 3) / 2 + 0.45) / 4) < 1e-12);
    assert.equal(json.recip_rank, 0.375);
    assert.equal(json.P_5, 0.2);
    assert.equal(json.recall_10, 0.5);
    assert.ok(Math.abs(json.ndcg - (0.943014 + 0.629238) / 4) < 1e-6);
    assert.match(await evalRun(["--help"]), /--complete .*trec_eval -c/);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("eval-run: a run query the qrels lack is an error naming it (trec_eval 10)", async () => {
  const f = await writeFixtures();
  try {
    await Deno.writeTextFile(f.run, RUN + "q_3 Q0 d_1 1 1.0 t\n");
    for (const extra of [[], ["--complete"]]) {
      await assert.rejects(
        evalRun(["--qrels", f.qrels, "--run", f.run, ...extra]),
        /run query "q_3" not in the qrels/,
      );
    }
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("eval-run: relevance levels are integers as trec_eval reads them (atol: 0.5 -> 0, 2.7 -> 2)", async () => {
  const f = await writeFixtures();
  try {
    await Deno.writeTextFile(f.qrels, "q 0 a 0.5\nq 0 b 2.7\n");
    await Deno.writeTextFile(f.run, "q Q0 a 1 2 t\nq Q0 b 2 1 t\n");
    const json = JSON.parse(await evalRun(["--qrels", f.qrels, "--run", f.run, "--json"]));
    // Only b is relevant (gain 2) at rank 2: AP = 1/2, NDCG = (2 / log2 3) / 2. Keeping 0.5 and 2.7
    // as floats gave AP = 1 and NDCG = (0.5 + 2.7 / log2 3) / (2.7 + 0.5 / log2 3).
    assert.equal(json.map, 0.5);
    assert.ok(Math.abs(json.ndcg - 1 / Math.log2(3)) < 1e-12);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("formatTrecEval pads like printf %-22s and %6.4f", () => {
  assert.equal(
    formatTrecEval({ num_q: 12, P_5: 0.25 }),
    "num_q                 \tall\t12\nP_5                   \tall\t0.2500\n",
  );
});

Deno.test("eval-run --help lists every option and reads no file", async () => {
  const help = await evalRun(["--help"]);
  assert.match(help, /^usage: deno task eval-run --qrels FILE --run FILE/);
  for (const flag of ["--qrels", "--run", "--complete", "--json", "--help"]) {
    assert.ok(help.includes(flag), flag);
  }
  assert.equal(await evalRun(["--help", "--qrels", "/nonexistent"]), help);
});

Deno.test("eval-run errors: bad flag, missing flag, missing file, malformed line", async () => {
  const f = await writeFixtures();
  try {
    await assert.rejects(
      evalRun(["--qrels", f.qrels, "--run", f.run, "--bogus"]),
      /Unknown option '--bogus'.*see --help/,
    );
    await assert.rejects(evalRun(["--qrels", f.qrels]), /missing --run FILE/);
    await assert.rejects(
      evalRun(["--qrels", join(f.dir, "nope"), "--run", f.run]),
      /qrels file not found: .*nope/,
    );
    await Deno.writeTextFile(f.run, "q_1 Q0 d_12 1 high t\n");
    await assert.rejects(
      evalRun(["--qrels", f.qrels, "--run", f.run]),
      /test\.run:1: score "high" is not a number/,
    );
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

const canRun = (await Deno.permissions.query({ name: "run", command: Deno.execPath() })).state === "granted";

Deno.test({
  name: "eval-run as a process: stdout on success; one stderr line and exit 2 on error",
  ignore: !canRun,
  async fn() {
    const f = await writeFixtures();
    const script = new URL("./eval_run.ts", import.meta.url).pathname;
    const run = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", script, ...args],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
    try {
      const ok = await run("--qrels", f.qrels, "--run", f.run);
      assert.equal(ok.code, 0);
      assert.equal(new TextDecoder().decode(ok.stdout), EXPECTED);
      const bad = await run("--qrels", f.qrels);
      assert.equal(bad.code, 2);
      const err = new TextDecoder().decode(bad.stderr);
      assert.match(err, /^eval-run: missing --run FILE/);
      assert.equal(err.trimEnd().split("\n").length, 1);
      const help = await run("--help");
      assert.equal(help.code, 0);
      assert.match(new TextDecoder().decode(help.stdout), /^usage: deno task eval-run/);
      const missing = await run("--qrels", join(f.dir, "nope"), "--run", f.run);
      assert.equal(missing.code, 2);
      assert.match(new TextDecoder().decode(missing.stderr), /^eval-run: qrels file not found/);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});
