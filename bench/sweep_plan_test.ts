import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { fileURLToPath } from "node:url";
import { InputError, UsageError } from "../models/util/args.ts";
import { expandPlan, parseOverrides, parseShard, parseSweep, shardRuns } from "./sweep_plan.ts";
import { METHODS } from "../methods/registry.ts";

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
  const spec = parseSweep(JSON.parse(json), "README example");
  assert.deepEqual(spec.hypotheses.map((h) => [h.factor, h.claim, h.levels]), [
    ["method", "equivalent", ["lora+nf4", "lora"]],
    ["rank", "increases", ["4", "8"]],
  ]);
  const plan = await expandPlan(spec, model);
  assert.equal(plan.productSize, 12);
  assert.equal(plan.excluded, 3); // lora+nf4 x rank 8 x 3 seeds; the dora/lora x q+k+v+o entry matches none
  assert.equal(plan.runs.length, 9);
  assert.ok(plan.runs.every((r) => r.config.dataset === "wordnet-lex" && r.config.epochs === 3));
});

Deno.test("sweep plan: hypotheses resolve to the factor's level names; numeric levels in rising order", () => {
  const spec = parseSweep({
    factors: {
      method: ["frozen", "lora"],
      quant: [{ name: "none", quant: "none" }, { name: "nf4+dq", quant: "nf4", "double-quant": true }],
      rank: [16, 4],
      "train-per-class": [32, 8, 128],
      seed: [0, 1],
    },
    hypotheses: [
      {
        factor: "quant",
        compare: ["none", "nf4+dq"],
        claim: "equivalent",
        margin: 0.01,
        name: "QLoRA loses nothing",
      },
      { factor: "rank", claim: "no effect" },
      { factor: "train-per-class", claim: "increases" },
      { factor: "method", compare: ["lora", "frozen"], claim: "better" },
      { factor: "rank", compare: [16, 4], claim: "decreases" },
    ],
  });
  assert.deepEqual(spec.hypotheses, [
    {
      index: 0,
      factor: "quant",
      claim: "equivalent",
      levels: ["none", "nf4+dq"],
      margin: 0.01,
      name: "QLoRA loses nothing",
    },
    { index: 1, factor: "rank", claim: "no effect", levels: ["16", "4"] },
    // Without "compare", increases/decreases order the levels by their numbers, not file order.
    { index: 2, factor: "train-per-class", claim: "increases", levels: ["8", "32", "128"] },
    { index: 3, factor: "method", claim: "better", levels: ["lora", "frozen"] },
    // With it, the author's order (numbers match level names: 16 is "16").
    { index: 4, factor: "rank", claim: "decreases", levels: ["16", "4"] },
  ]);
  assert.deepEqual(parseSweep({ factors: { seed: [0] } }).hypotheses, []);
});

Deno.test("sweep plan: a bad hypothesis is one error line naming the entry and the fix", () => {
  const factors = {
    method: ["frozen", "lora"],
    quant: ["none", "nf4"],
    targets: ["q+v"],
    seed: [0, 1],
  };
  const cases: [unknown, RegExp][] = [
    [{}, /"hypotheses" must be a list of objects/],
    [[3], /hypotheses\[0\] must be an object with "factor" and "claim"/],
    [
      [{ factor: "quant", claim: "better", comapre: [] }],
      /hypotheses\[0\]: unknown key 'comapre' \(use factor, claim, compare, margin, name\)/,
    ],
    [
      [{ factor: "rnak", claim: "no effect" }],
      /hypotheses\[0\]: 'rnak' is not a factor of this sweep \(method, quant, targets\)/,
    ],
    [[{ factor: "seed", claim: "no effect" }], /hypotheses\[0\]: seeds are the replicates/],
    [[{ factor: 3, claim: "no effect" }], /"factor" must be one of method, quant, targets/],
    [
      [{ factor: "quant", claim: "same" }],
      /"claim" must be one of "better", "worse", "equivalent", "no effect", "increases", "decreases"/,
    ],
    [[{ factor: "targets", claim: "no effect" }], /\(targets no effect\): factor 'targets' has one level/],
    [
      [{ factor: "quant", claim: "better" }],
      /\(quant better\): needs "compare": \[A, B\], two levels of 'quant' \(none, nf4\)/,
    ],
    [[{ factor: "quant", compare: ["none"], claim: "equivalent" }], /needs "compare": \[A, B\]/],
    [
      [{ factor: "quant", compare: ["none", "fp4"], claim: "worse" }],
      /'fp4' is not a level of 'quant' \(none, nf4\)/,
    ],
    [[{ factor: "quant", compare: ["none", "none"], claim: "no effect" }], /"compare" names 'none' twice/],
    [[{ factor: "quant", compare: "none", claim: "no effect" }], /"compare" must be a list of level names/],
    [[{ factor: "quant", compare: ["none"], claim: "no effect" }], /"compare" must name two or more levels/],
    [
      [{ factor: "method", claim: "increases" }],
      /level 'frozen' is not a number, so the levels have no order; list them in rising order in "compare"/,
    ],
    [
      [{ factor: "quant", compare: ["none", "nf4"], claim: "better", margin: 0.01 }],
      /"margin" applies to "equivalent" and "no effect" claims only/,
    ],
    [
      [{ factor: "quant", claim: "no effect", margin: 0 }],
      /"margin" must be a positive number in the metric's own unit/,
    ],
    [[{ factor: "quant", claim: "no effect", margin: "1%" }], /"margin" must be a positive number/],
    [[{ factor: "quant", claim: "no effect", name: "" }], /"name" must be a non-empty string/],
    [
      [{ factor: "quant", claim: "no effect" }, { factor: "quant", claim: "nope" }],
      /^s\.json: hypotheses\[1\]: "claim"/,
    ],
  ];
  for (const [hypotheses, re] of cases) {
    assert.throws(
      () => parseSweep({ factors, hypotheses }, "s.json"),
      (e: Error) => {
        assert.ok(e instanceof InputError, e.message);
        assert.match(e.message, re);
        assert.match(e.message, /^s\.json: /);
        assert.equal(e.message.split("\n").length, 1);
        return true;
      },
      JSON.stringify(hypotheses),
    );
  }
  // An ordered claim on non-numeric levels is fine once "compare" gives the order.
  const ok = parseSweep({
    factors,
    hypotheses: [{ factor: "method", compare: ["frozen", "lora"], claim: "increases" }],
  });
  assert.deepEqual(ok.hypotheses[0].levels, ["frozen", "lora"]);
});

Deno.test('sweep files: a "*" method level is every registered method no other level names, in registry order', () => {
  const spec = parseSweep({
    factors: { method: [{ name: "lora-r2", method: "lora", rank: 2 }, "*", "dora"] },
  });
  const names = spec.factors[0].levels.map((l) => l.name);
  const rest = [...METHODS.keys()].filter((m) => m !== "lora" && m !== "dora");
  assert.deepEqual(names, ["lora-r2", ...rest, "dora"]);
  assert.equal(new Set(names).size, METHODS.size);
});
