import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { fileURLToPath } from "node:url";
import { InputError, UsageError } from "../models/util/args.ts";
import { expandPlan, parseOverrides, parseShard, parseSweep, shardRuns } from "./sweep_plan.ts";

const STUDY = fileURLToPath(new URL("./sweeps/study.json", import.meta.url));
const SMOKE = fileURLToPath(new URL("./sweeps/smoke.json", import.meta.url));
const model = { model: STORIES };

Deno.test("sweep plan: the shipped study expands to 6 x 3 x 4 x 3 x 3 = 648 distinct runs", async () => {
  const plan = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(STUDY))), model);
  assert.equal(plan.productSize, 648);
  assert.equal(plan.runs.length, 648);
  assert.equal(new Set(plan.runs.map((r) => r.runId)).size, 648);
  // The rank factor reaches AdaLoRA as targetR (its schema has no `rank`), LoRA keeps `rank`.
  const ada = plan.runs.filter((r) => r.config.method === "adalora");
  assert.equal(ada.length, 108);
  assert.deepEqual([...new Set(ada.map((r) => r.config.methodOptions.targetR))].sort((a, b) => +a! - +b!), [
    4,
    8,
    16,
    32,
  ]);
  assert.ok(ada.every((r) => r.config.methodOptions.rank === undefined && r.levels.rank !== "n/a"));
  const nf4 = plan.runs.filter((r) => r.levels.method === "lora+nf4");
  assert.equal(nf4.length, 108);
  assert.ok(nf4.every((r) => r.config.quant.scheme === "nf4" && r.config.quant.doubleQuant === true));
  assert.deepEqual(
    [...new Set(plan.runs.map((r) => r.config.trainPerClass))],
    [8, 32, 128],
  );
  // The smoke suite: 5 setups (three tasks, plain and quantized bases) x 2 seeds.
  const smoke = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(SMOKE))), model);
  assert.equal(smoke.runs.length, 10);
  assert.deepEqual([...new Set(smoke.runs.map((r) => r.config.task))].sort(), ["classify", "lm", "retrieve"]);
});

Deno.test("sweep plan: exclusions drop matching entries; options a method ignores collapse duplicates", async () => {
  const spec = parseSweep({
    fixed: { "train-per-class": 2, epochs: 1 },
    factors: { method: ["lora", "dora", "frozen"], rank: [4, 8], seed: [0, 1] },
    exclude: [{ method: "dora", rank: 8 }, { method: "lora", "quant": "nf4" }],
  });
  const plan = await expandPlan(spec, model);
  assert.equal(plan.productSize, 12);
  assert.equal(plan.excluded, 2); // dora x rank 8 x 2 seeds
  assert.equal(plan.collapsed, 2); // frozen x rank 8 == frozen x rank 4
  assert.equal(plan.runs.length, 8);
  assert.deepEqual(plan.runs.map((r) => r.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  const frozen = plan.runs.filter((r) => r.config.method === "frozen");
  assert.deepEqual(frozen.map((r) => r.levels.rank), ["n/a", "n/a"]);
  assert.ok(plan.notices.some((n) => /frozen: rank \(4 entries\)/.test(n)), plan.notices.join("|"));
  assert.ok(plan.notices.some((n) => /exclude\[1\].*matched no entry/.test(n)));
});

Deno.test("sweep plan: object levels, list-valued exclusions and flag-valued exclusion keys", async () => {
  const spec = parseSweep({
    fixed: { "train-per-class": 2, opt: { dropout: 0 } },
    factors: {
      variant: [
        { name: "plain", method: "lora" },
        { name: "q4", method: "lora", quant: "nf4", "double-quant": true },
        { method: "dora", rank: 4 },
      ],
      targets: ["q+v", "q+k+v", "q+k+v+o"],
    },
    exclude: [{ variant: ["plain", "q4"], targets: "q+k+v+o" }, { quant: "nf4", targets: "q+v" }],
  });
  assert.equal(spec.factors[0].levels[2].name, "method=dora,rank=4");
  const plan = await expandPlan(spec, model);
  assert.equal(plan.excluded, 3);
  assert.equal(plan.runs.length, 6);
  assert.deepEqual(
    plan.runs.map((r) => `${r.levels.variant}/${r.levels.targets}`),
    [
      "plain/q+v",
      "plain/q+k+v",
      "q4/q+k+v",
      "method=dora,rank=4/q+v",
      "method=dora,rank=4/q+k+v",
      "method=dora,rank=4/q+k+v+o",
    ],
  );
});

Deno.test("sweep plan: bad files and invalid entries are one-line errors naming the problem", async () => {
  assert.throws(() => parseSweep({ factors: { rnak: [4] } }), /'rnak' is not a bench flag/);
  assert.throws(() => parseSweep({ fixed: { out: "x" }, factors: { seed: [0] } }), /'out' is not allowed/);
  assert.throws(() => parseSweep({ factors: { seed: [] } }), /non-empty list/);
  assert.throws(() => parseSweep({ factors: { seed: [0] }, extra: 1 }), /unknown key 'extra'/);
  assert.throws(
    () => parseSweep({ factors: { method: [{ method: "lora", quant: "nf4" }], quant: ["none"] } }),
    /factors 'method' and 'quant' both set 'quant'/,
  );
  assert.throws(
    () => parseSweep({ factors: { m: [{ name: "a", method: "lora" }, { name: "a", method: "dora" }] } }),
    /two levels are named 'a'/,
  );
  assert.throws(() => parseSweep({ factors: { seed: [0] }, exclude: [{ colour: 1 }] }), /neither a factor/);
  assert.throws(() => parseSweep({ factors: { "double-quant": ["yes"] } }), /must be true or false/);
  const bad = parseSweep({ fixed: { "train-per-class": 2 }, factors: { rank: [4, 0], seed: [0] } });
  await assert.rejects(expandPlan(bad, model), (err: Error) => {
    assert.ok(err instanceof UsageError);
    assert.match(err.message, /^plan entry 2 \(rank=0 seed=0\): /);
    return true;
  });
  await assert.rejects(
    expandPlan(parseSweep({ factors: { seed: [0] } }), { model: "/no/such.bin" }),
    InputError,
  );
  assert.throws(() => parseOverrides(["model"]), /expected FLAG=VALUE/);
  assert.deepEqual(parseOverrides(["double-quant=true", "epochs=2"]), { "double-quant": true, epochs: "2" });
});

Deno.test("sweep shards: disjoint slices that cover the plan, in plan order", async () => {
  const plan = await expandPlan(parseSweep(JSON.parse(await Deno.readTextFile(STUDY))), model);
  for (const n of [1, 2, 3, 7, 10]) {
    const slices = Array.from({ length: n }, (_, i) => shardRuns(plan.runs, i + 1, n));
    const all = slices.flat().map((r) => r.index).sort((a, b) => a - b);
    assert.deepEqual(all, plan.runs.map((r) => r.index), `n=${n}: not an exact cover`);
    const sizes = slices.map((s) => s.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n}: unbalanced ${sizes}`);
  }
  assert.deepEqual(shardRuns(plan.runs, 2, 3).slice(0, 3).map((r) => r.index), [1, 4, 7]);
  assert.deepEqual(parseShard("3/8"), { index: 3, count: 8 });
  for (const bad of ["0/4", "5/4", "1/0", "2", "a/b"]) assert.throws(() => parseShard(bad), /--shard/);
});

Deno.test("sweep plan: the README's sweep file example is a valid plan (2 methods x 2 ranks x 3 seeds - 3)", async () => {
  const readme = await Deno.readTextFile(fileURLToPath(new URL("../README.md", import.meta.url)));
  const section = readme.slice(readme.indexOf("### Sweep files"));
  const json = section.slice(
    section.indexOf("```json") + 7,
    section.indexOf("```", section.indexOf("```json") + 7),
  );
  const plan = await expandPlan(parseSweep(JSON.parse(json), "README example"), model);
  assert.equal(plan.productSize, 12);
  assert.equal(plan.excluded, 3); // lora+nf4 x rank 8 x 3 seeds; the dora/lora x q+k+v+o entry matches none
  assert.equal(plan.runs.length, 9);
  assert.ok(plan.runs.every((r) => r.config.dataset === "wordnet-lex" && r.config.epochs === 3));
});
