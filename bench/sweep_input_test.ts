import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { UsageError } from "../models/util/args.ts";
import { expandPlan, parseSweep } from "./sweep_plan.ts";

const SWEEP = fileURLToPath(new URL("./sweep.ts", import.meta.url));
const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";
const model = { model: STORIES };

const dir = await Deno.makeTempDir({ prefix: "peft-sweep-input-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const plan = (json: unknown) => expandPlan(parseSweep(json), model);
const base = { "train-per-class": 2, steps: 2, "max-eval": 5 };

Deno.test("sweep plan: seeds out of range, duplicate seeds and duplicate entries are usage errors", async () => {
  await assert.rejects(
    () => plan({ fixed: base, factors: { seed: [0, 4294967296] } }),
    (e: Error) =>
      e instanceof UsageError &&
      e.message === "plan entry 2 (seed=4294967296): --seed 4294967296: a seed is an integer from 0 to " +
          "4294967295 (the generator's 32-bit range)",
  );
  await assert.rejects(
    () => plan({ fixed: { ...base, seed: "1,1" }, factors: { rank: [4] } }),
    /plan entry 1 \(rank=4\): --seed 1,1: seed 1 is given twice/,
  );
  // Before: two spellings of one seed collapsed silently into one run.
  await assert.rejects(
    () => plan({ fixed: base, factors: { seed: [0, "0.0"] } }),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        "plan entry 2 (seed=0.0) is the same run as plan entry 1 (seed=0); drop one of the two levels",
  );
  // Collapsing through options a method does not take stays a notice.
  const frozen = await plan({ fixed: base, factors: { method: ["frozen"], rank: [4, 8] } });
  assert.equal(frozen.collapsed, 1);
});

Deno.test("sweep plan: a level overrides a fixed method option in either spelling; one level giving both must agree", async () => {
  const a = await plan({ fixed: { ...base, rank: 4 }, factors: { r: [{ name: "two", opt: { rank: 2 } }] } });
  assert.equal(a.runs[0].config.methodOptions.rank, 2);
  const b = await plan({ fixed: { ...base, opt: { rank: 2 } }, factors: { rank: [8] } });
  assert.equal(b.runs[0].config.methodOptions.rank, 8);
  await assert.rejects(
    () => plan({ fixed: base, factors: { r: [{ name: "both", rank: 4, opt: ["rank=2"] }] } }),
    /plan entry 1 \(r=both\): --rank 4 and --opt rank=2 set 'rank' differently; give it once/,
  );
});

Deno.test("sweep plan: data-opt as an object or a list, checked against the dataset's schema", async () => {
  const csv = join(dir, "t.csv");
  Deno.writeTextFileSync(csv, "sentence,topic\na,x\nb,y\n");
  const p = await plan({
    fixed: { ...base, dataset: `csv:${csv}`, "data-opt": { textColumn: "sentence" } },
    factors: { labels: [{ name: "topic", "data-opt": ["labelColumn=topic"] }] },
  });
  assert.deepEqual(p.runs[0].config.dataOptions, { textColumn: "sentence", labelColumn: "topic" });
  assert.throws(
    () => parseSweep({ fixed: { "data-opt": 5 }, factors: { seed: [0] } }),
    /fixed: 'data-opt' must be an object \{KEY: VALUE\} or a list of "KEY=VALUE"/,
  );
  await assert.rejects(
    () => plan({ fixed: { ...base, "data-opt": { lang: "de" } }, factors: { seed: [0] } }),
    /--data-opt: dataset wordnet-lex does not take option 'lang'; valid keys: maxDev, maxTest/,
  );
});

async function sweep(file: string, out: string): Promise<{ code: number; stderr: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SWEEP, file, "--out", out],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: res.code, stderr: new TextDecoder().decode(res.stderr) };
}

Deno.test({
  name: "sweep CLI: a bad dataset or an --out file stops the sweep before any run (exit 2, nothing written)",
  ignore: !canRun,
  fn: async () => {
    const one = join(dir, "one.csv");
    Deno.writeTextFileSync(
      one,
      ["text,label", ...Array.from({ length: 12 }, (_, i) => `t${i},pos`)].join("\n"),
    );
    const file = join(dir, "plan.json");
    Deno.writeTextFileSync(
      file,
      JSON.stringify({
        fixed: { ...base, model: STORIES },
        factors: { dataset: [`csv:${one}`, "wordnet-lex"] },
      }),
    );
    const out = join(dir, "out");
    const bad = await sweep(file, out);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /error: plan run #0 \(dataset=csv:.*one\.csv\): .*only one class \('pos'\) in train/,
    );
    assert.throws(() => Deno.readDirSync(out), Deno.errors.NotFound);
    const taken = join(dir, "taken");
    Deno.writeTextFileSync(taken, "x");
    const res = await sweep(file, taken);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /error: --out .*taken is a file, not a folder/);
    assert.equal(Deno.readTextFileSync(taken), "x");
  },
});
