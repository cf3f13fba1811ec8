import assert from "node:assert/strict";
import { join } from "node:path";
import { fixtureRecord, syntheticRecords, writeResults } from "../reports/testing.ts";
import { expandPlan, parseSweep } from "../bench/sweep_plan.ts";
import { Rng } from "../models/util/rng.ts";

const SCRIPT = new URL("./report.ts", import.meta.url).pathname;

async function run(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("report CLI: usage and input errors are one line with exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string[], RegExp][] = [
      [["--out", dir], /--results is required/],
      [["--results", join(dir, "nope"), "--out", join(dir, "o")], /results folder not found/],
      [["--results", dir, "--out", join(dir, "o")], /no run records in/],
      [["--results", dir, "--out", join(dir, "o"), "--resamples", "0"], /--resamples: invalid value '0'/],
      [["--bogus"], /Unknown option '--bogus'/],
      [["--results", dir, "--out", join(dir, "o"), "--margin", "0"], /--margin: invalid value '0'/],
      [["--results", dir, "--out", join(dir, "o"), "--margin", "x"], /--margin: invalid value 'x'/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report CLI writes the site and REPORT.md from a results folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const results = join(dir, "results");
    await writeResults(
      results,
      await syntheticRecords({
        tasks: ["classify"],
        ranks: [4],
        quants: ["none", "nf4"],
        seeds: 2,
        items: 5,
      }),
    );
    const out = join(dir, "site");
    const r = await run(["--results", results, "--out", out, "--resamples", "50", "--permutations", "50"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /report: 41 runs/);
    assert.match(await Deno.readTextFile(join(out, "index.html")), /<table class="runs"/);
    assert.match(await Deno.readTextFile(join(out, "REPORT.md")), /^# peft-bench report/);
    assert.equal([...Deno.readDirSync(join(out, "runs"))].length, 41);
    assert.match(await Deno.readTextFile(join(out, "REPORT.md")), /Analysed metric: \*\*accuracy\*\*/);
    // --metric picks the analysed metric; one the runs lack is one line naming those they carry, exit 2.
    const f1 = await run(["--results", results, "--out", out, "--metric", "macroF1", "--resamples", "20"]);
    assert.equal(f1.code, 0, f1.stderr);
    const md = await Deno.readTextFile(join(out, "REPORT.md"));
    assert.match(md, /Analysed metric: \*\*macroF1\*\*/);
    assert.match(md, /macro-F1 points/);
    assert.match(md, /chosen with --metric; the task's primary is accuracy/);
    const bad = await run(["--results", results, "--out", out, "--metric", "ndcg@10"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no run carries metric 'ndcg@10' \(--metric\); the runs carry: .*macroF1/);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    // A second run refreshes the same folder; an unrelated non-empty folder is refused.
    assert.equal((await run(["--results", results, "--out", out])).code, 0);
    const other = await run(["--results", results, "--out", results]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /not empty and holds no previous report/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report --sweep names factors and levels as the sweep file does (records do not carry them)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sweepFile = join(dir, "study.json");
    await Deno.writeTextFile(
      sweepFile,
      JSON.stringify({
        fixed: { dataset: "wordnet-lex", steps: 2, rank: 4 },
        factors: {
          variant: [
            { name: "lora", method: "lora" },
            { name: "lora+nf4", method: "lora", quant: "nf4", "double-quant": true },
            { name: "baseline", method: "frozen" },
          ],
          seed: [0, 1, 2],
        },
      }),
    );
    const plan = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(sweepFile)), sweepFile));
    const records = await Promise.all(
      plan.runs.map((r, i) => fixtureRecord(r.config, new Rng(100 + i), 20, 4)),
    );
    const results = join(dir, "results");
    await writeResults(results, records);
    const out = join(dir, "site");
    const r = await run(["--results", results, "--out", out, "--sweep", sweepFile, "--resamples", "20"]);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(join(out, "REPORT.md"));
    // The design model's factor is the sweep's "variant", not the derived method/quant pair.
    assert.match(md, /variant \(named as in .*study\.json\) as factors/);
    assert.match(md, /\| variant \| 2 \| F\(2, 6\) = /);
    // Configurations read as the sweep file wrote them, in the baseline table too.
    assert.match(md, /\| variant lora\+nf4 \| 3 \|/);
    // Without --sweep the same records get the derived factors.
    const plain = await run(["--results", results, "--out", out, "--resamples", "20"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(await Deno.readTextFile(join(out, "REPORT.md")), /variant lora\+nf4/);
    const missing = await run(["--results", results, "--out", out, "--sweep", join(dir, "nope.json")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /sweep file not found: .*nope\.json \(check --sweep\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report --sweep answers the sweep file's hypotheses in the findings; a bad one is exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sweep = {
      fixed: { dataset: "wordnet-lex", steps: 2, rank: 4 },
      factors: {
        variant: [
          { name: "lora", method: "lora" },
          { name: "lora+nf4", method: "lora", quant: "nf4", "double-quant": true },
          { name: "baseline", method: "frozen" },
        ],
        seed: [0, 1, 2],
      },
    };
    const hypotheses = [
      { factor: "variant", compare: ["lora+nf4", "lora"], claim: "equivalent", margin: 0.01 },
      { factor: "variant", compare: ["lora", "baseline"], claim: "better", name: "adapting helps" },
    ];
    const sweepFile = join(dir, "study.json");
    await Deno.writeTextFile(sweepFile, JSON.stringify({ ...sweep, hypotheses }));
    const plan = await expandPlan(parseSweep(sweep));
    // Accuracy set by hand: lora 0.60/0.62/0.64 by seed, nf4 within ±0.1 point of it, frozen 0.30.
    const records = await Promise.all(plan.runs.map(async (r, i) => {
      const rec = await fixtureRecord(r.config, new Rng(200 + i), 20, 4);
      const seed = r.config.seed;
      rec.metrics.accuracy = r.levels.variant === "baseline"
        ? 0.30
        : 0.60 + 0.02 * seed + (r.levels.variant === "lora+nf4" ? 0.001 * (seed - 1) : 0);
      return rec;
    }));
    const results = join(dir, "results");
    await writeResults(results, records);
    const out = join(dir, "site");
    const r = await run(["--results", results, "--out", out, "--sweep", sweepFile, "--resamples", "20"]);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(join(out, "REPORT.md"));
    assert.match(
      md,
      /\n1\. variant lora\+nf4 and lora are equivalent within ±1\.0 accuracy points — \*\*supported\*\*: the interval lies inside ±1\.0 accuracy points: lora\+nf4 − lora \+0\.0 accuracy points \(90% CI \[-0\.\d, 0\.\d\] over 3 matched pairs/,
    );
    assert.match(
      md,
      /\n2\. \*adapting helps\*: variant lora is better than baseline \(accuracy, higher is better\) — \*\*supported\*\*: lora − baseline \+32\.0 accuracy points/,
    );
    // A hypothesis naming a level the factor lacks: one line, exit 2, before anything is written.
    const bad = join(dir, "bad.json");
    await Deno.writeTextFile(
      bad,
      JSON.stringify({
        ...sweep,
        hypotheses: [{ factor: "variant", compare: ["lora", "qlora"], claim: "worse" }],
      }),
    );
    const refused = await run(["--results", results, "--out", join(dir, "o2"), "--sweep", bad]);
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /bad\.json: hypotheses\[0\] \(variant worse\): 'qlora' is not a level of 'variant'/,
    );
    assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    // A margin in points where the metric's own unit is meant (accuracy 0.01 = 1 point).
    const points = join(dir, "points.json");
    await Deno.writeTextFile(
      points,
      JSON.stringify({ ...sweep, hypotheses: [{ factor: "variant", claim: "no effect", margin: 1 }] }),
    );
    const wrongUnit = await run(["--results", results, "--out", join(dir, "o3"), "--sweep", points]);
    assert.equal(wrongUnit.code, 2);
    assert.match(
      wrongUnit.stderr,
      /hypotheses\[0\] \(variant no effect\): margin 1 is in accuracy's own unit/,
    );
    assert.equal(wrongUnit.stderr.trim().split("\n").length, 1, wrongUnit.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
