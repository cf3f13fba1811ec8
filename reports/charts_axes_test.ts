import assert from "node:assert/strict";
import { ChartRenderer, qualityAxis, runCharts, studyCharts } from "./charts.ts";
import { buildStudies } from "./data.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunRecord } from "../bench/record.ts";

/** lora with long names, train sizes 64/class seen before 16/class, 3 seeds. */
async function records(): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const per of [64, 16]) {
    for (const method of ["lora", "orthogeolora"]) {
      for (const seed of [0, 1, 2]) {
        const c = fixtureConfig({
          method,
          methodOptions: { targets: "q,k,v,o,gate,up,down", rank: 16, alpha: 16 },
          quant: { scheme: "fp4", doubleQuant: true },
          trainSize: null,
          trainPerClass: per,
          seed,
        });
        const r = await fixtureRecord(c, new Rng(seed).fork(`${method}${per}`), 10, 4);
        r.metrics.accuracy = 0.6 + (per === 64 ? 0.05 : 0) + 0.01 * seed;
        out.push(r);
      }
    }
  }
  return out;
}

Deno.test("factor charts: error bars, numeric level order, an axis that says where it starts", async () => {
  const [study] = buildStudies(await records());
  const chart = studyCharts(study).find((c) => c.id === "trainsize-by-method")!;
  const layers = chart.spec.layer as { mark: { type: string } }[];
  assert.deepEqual(layers.map((l) => l.mark.type), ["errorbar", "line"]);
  // 16/class before 64/class, though the records list 64 first.
  assert.deepEqual(chart.spec.layer[1].encoding.x.sort, ["16/class", "64/class"]);
  // Three seeds at 0.60, 0.61, 0.62 (+0.05 at 64/class): mean ± t(0.975, 2) · 0.01 / sqrt(3).
  const cell = chart.values.find((v) => v.x === "16/class" && v.series === "lora")!;
  const h = 4.302652729749462 * 0.01 / Math.sqrt(3); // scipy.stats.t.ppf(0.975, 2)
  assert.ok(Math.abs((cell.hi as number) - (cell.quality as number) - h) < 1e-9);
  assert.match(chart.title, /y axis starts at 0\.\d+, not 0/);
  const box = studyCharts(study).find((c) => c.id === "box-trainSize")!;
  assert.deepEqual(box.spec.encoding.x.sort, ["16/class", "64/class"]);
});

Deno.test("quality axis: from 0 when the data comes near it, else the start is stated", () => {
  assert.deepEqual(qualityAxis([0.05, 0.9]), { domain: [0, 0.943], note: "" });
  const far = qualityAxis([0.55, 0.65]);
  assert.deepEqual(far.domain, [0.545, 0.655]);
  assert.equal(far.note, " (y axis starts at 0.545, not 0)");
});

Deno.test("legends and configuration axes show full names (none cut with an ellipsis)", async () => {
  const [study] = buildStudies(await records());
  const r = new ChartRenderer();
  try {
    for (const c of studyCharts(study)) {
      const svg = await r.render(c);
      assert.ok(!svg.includes("…"), `${c.id} cuts a label`);
    }
    // Run pages too: a quantized run's per-layer error chart names both kinds in its legend.
    const quantized = study.runs.find((x) => x.config.quant.scheme !== "none")!;
    for (const c of runCharts(quantized)) {
      const svg = await r.render(c);
      assert.ok(!svg.includes("…"), `run chart ${c.id} cuts a label`);
    }
    const loss = studyCharts(study).find((c) => c.id === "loss")!;
    const svg = await r.render(loss);
    for (const g of study.groups) assert.ok(svg.includes(g.label), `legend names ${g.label}`);
  } finally {
    r.finalize();
  }
});
