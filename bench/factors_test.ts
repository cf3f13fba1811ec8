import assert from "node:assert/strict";
import { factorsOf, levelBoundOptions, runRank, sortLevels } from "./factors.ts";
import { recordsToCsv } from "./export_csv.ts";
import { buildStudies } from "../reports/data.ts";
import { testConfig, testRecord } from "./record_testing.ts";

Deno.test("a run's rank is one definition: AdaLoRA's targetR in the CSV and in the report alike", () => {
  const adalora = testRecord("classify-adalora-s0-000000000001", (r) => {
    r.config.method = "adalora";
    r.config.methodOptions = { targets: "q+v", initR: 12, targetR: 6, alpha: 16 };
  });
  const lora = testRecord("classify-lora-s0-000000000002");
  const ia3 = testRecord("classify-ia3-s0-000000000003", (r) => {
    r.config.method = "ia3";
    r.config.methodOptions = { targets: "k+v+down" };
  });
  const csv = recordsToCsv([adalora, lora, ia3]).split("\r\n").map((l) => l.split(","));
  const col = csv[0].indexOf("rank");
  const fromCsv = csv.slice(1, 4).map((row) => row[col]);
  assert.deepEqual(fromCsv, ["6", "8", ""]);
  const [study] = buildStudies([adalora, lora, ia3]);
  const fromReport = [adalora, lora, ia3].map((r) =>
    study.groups.find((g) => g.runs.includes(r))!.factors.rank
  );
  assert.deepEqual(fromReport, [6, 8, null]);
  assert.deepEqual(fromCsv, fromReport.map((r) => (r === null ? "" : String(r))));
  assert.equal(runRank(testConfig({ methodOptions: { rank: 4, targetR: 9 } })), 4, "rank wins over targetR");
});

Deno.test("factor levels: numeric levels in numeric order, train sizes 16/class before 64/class", () => {
  assert.deepEqual(sortLevels(["64/class", "16/class", "128/class"]), ["16/class", "64/class", "128/class"]);
  assert.deepEqual(sortLevels([16, null, 4, "all", 64]), [4, 16, 64, "all", null]);
  assert.deepEqual(
    sortLevels(["q+v", "attn", "q+k+v+o"]),
    ["q+v", "attn", "q+k+v+o"],
    "names keep first-seen order",
  );
  const f = factorsOf(
    testConfig({ trainPerClass: 16, trainSize: null, quant: { scheme: "nf4", doubleQuant: true } }),
  );
  assert.deepEqual(f, { method: "lora", targets: "q+v", rank: 8, quant: "nf4+dq", trainSize: "16/class" });
});

Deno.test("levelBoundOptions: an option with one value per level binds; a crossed or constant one does not", () => {
  const cfg = (method: string, opts: Record<string, unknown>) =>
    testConfig({ method, methodOptions: { targets: "q+v", ...opts } });
  const tied = [4, 8, 16].map((rank) => cfg("lora", { rank, alpha: 2 * rank, dropout: 0.1 }));
  const crossed = [4, 16].flatMap((rank) => [8, 32].map((alpha) => cfg("dora", { rank, alpha })));
  const ada = [4, 8].map((targetR) => cfg("adalora", { targetR, initR: 1.5 * targetR, alpha: 16 }));
  const bound = levelBoundOptions([...tied, ...crossed, ...ada], "rank");
  assert.deepEqual(bound, [
    { method: "lora", option: "alpha", values: [[4, 8], [8, 16], [16, 32]] },
    // AdaLoRA's rank is its targetR, which thus follows rank, and initR = 1.5 targetR with it.
    { method: "adalora", option: "initR", values: [[4, 6], [8, 12]] },
    { method: "adalora", option: "targetR", values: [[4, 4], [8, 8]] },
  ]);
  assert.deepEqual(levelBoundOptions(tied, "method"), [], "options never bind across methods");
  assert.deepEqual(levelBoundOptions([tied[0]], "rank"), [], "one level: nothing to follow");
});
