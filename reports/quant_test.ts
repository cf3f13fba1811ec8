/**
 * Quantization in the report (issue 19): one point per scheme configuration on the bits plane,
 * averaged over the configurations every scheme shares, with 95% t intervals over seeds (hand-worked
 * below; t(0.975, 2) = 4.3027 from the table), and the per-layer errors on the run pages.
 */
import assert from "node:assert/strict";
import { buildStudies } from "./data.ts";
import { quantFigures, quantLayerRows, quantView, schemeLabel, showError } from "./quant.ts";
import { studyCharts } from "./charts.ts";
import { renderReport, runPageName } from "./site.ts";
import { fixtureConfig, fixtureRecord, syntheticRecords } from "./testing.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunRecord } from "../bench/record.ts";

const T975_2 = 4.302652729911275;

/** Seeds 0..2 of one scheme at one rank, accuracies and quant figures set by hand. */
async function runs(scheme: string, rank: number, acc: number[], bits: number, error?: number) {
  const out: RunRecord[] = [];
  for (const seed of [0, 1, 2]) {
    const r = await fixtureRecord(
      fixtureConfig({ methodOptions: { targets: "qv", rank, alpha: 16 }, quant: { scheme }, seed }),
      new Rng(seed),
      4,
      3,
    );
    r.metrics = { accuracy: acc[seed] };
    const figures = {
      scheme,
      loftq: 0,
      linearBytes: 0,
      bitsPerParam: bits,
      dequantCostMs: null,
      ...(error === undefined ? {} : { meanRelativeError: error * 1.25, meanOutputRelativeError: error }),
    };
    r.quant = figures;
    out.push(r);
  }
  return out;
}

async function study() {
  return [
    ...await runs("none", 4, [0.60, 0.61, 0.62], 32),
    ...await runs("none", 16, [0.64, 0.65, 0.66], 32),
    ...await runs("nf4", 4, [0.59, 0.60, 0.62], 4.5, 0.08),
    ...await runs("nf4", 16, [0.63, 0.64, 0.62], 4.5, 0.08),
    // Only nf4 was run at rank 8: not shared by every scheme, so left out of the points.
    ...await runs("nf4", 8, [0.99, 0.99, 0.99], 4.5, 0.08),
    ...await runs("int8", 4, [0.625, 0.625, 0.625], 8.0625, 0.005),
    ...await runs("int8", 16, [0.625, 0.625, 0.625], 8.0625, 0.005),
  ];
}

const near = (x: number, y: number, tol = 1e-12) => Math.abs(x - y) < tol;

Deno.test("one point per scheme configuration over the shared configurations, t intervals over seeds", async () => {
  const [s] = buildStudies(await study());
  const v = quantView(s)!;
  assert.equal(v.matched, true);
  assert.equal(v.shared, 2, "ranks 4 and 16; rank 8 only with nf4");
  assert.equal(v.errorKind, "output");
  assert.deepEqual(v.points.map((p) => p.scheme), ["nf4", "int8", "none"], "by bits");
  const [nf4, int8, none] = v.points;
  // none: per-seed means over ranks 0.62, 0.63, 0.64 -> 0.63, SD 0.01.
  assert.ok(near(none.quality.mean, 0.63));
  assert.ok(near(none.quality.half, T975_2 * 0.01 / Math.sqrt(3)));
  // nf4: per-seed means 0.61, 0.62, 0.62 -> 0.61667, SD sqrt(1/3) x 0.01.
  assert.ok(near(nf4.quality.mean, (0.61 + 0.62 + 0.62) / 3));
  assert.ok(near(nf4.quality.half, T975_2 * 0.01 * Math.sqrt(1 / 3) / Math.sqrt(3), 1e-9));
  assert.equal(nf4.configs, 2);
  assert.ok(near(int8.quality.mean, 0.625) && int8.quality.half < 1e-15);
  assert.ok(near(nf4.bits.mean, 4.5) && near(int8.bits.mean, 8.0625) && near(none.bits.mean, 32));
  assert.ok(near(nf4.error!.mean, 0.08) && near(int8.error!.mean, 0.005));
  assert.equal(none.error, undefined);
  const charts = studyCharts(s);
  const quality = charts.find((c) => c.id === "quant-bits-quality")!;
  assert.deepEqual(quality.values.map((x) => x.scheme), ["nf4", "int8", "none"]);
  assert.match(quality.title, /averaged over the 2 configuration\(s\) every scheme was run with/);
  const error = charts.find((c) => c.id === "quant-bits-error")!;
  assert.deepEqual(error.values.map((x) => [x.scheme, x.bits, x.error]), [["nf4", 4.5, 0.08], [
    "int8",
    8.0625,
    0.005,
  ]]);
  assert.match(error.title, /mean output relative error on the calibration batch/);
});

Deno.test("without output errors on every run the weight error is plotted; no quantized run, no chart", async () => {
  const records = await study();
  delete (records[6].quant as unknown as Record<string, unknown>).meanOutputRelativeError;
  const [s] = buildStudies(records);
  const v = quantView(s)!;
  assert.equal(v.errorKind, "weight");
  assert.ok(near(v.points[0].error!.mean, 0.1), "nf4's weight error, 1.25 x 0.08");
  const [plain] = buildStudies(records.filter((r) => r.config.quant.scheme === "none"));
  assert.equal(quantView(plain), null);
  assert.ok(!studyCharts(plain).some((c) => c.id.startsWith("quant-")));
  assert.equal(
    schemeLabel(
      await fixtureRecord(
        fixtureConfig({ quant: { scheme: "gptq", blockSize: 128, actOrder: true } }),
        new Rng(0),
      ),
    ),
    "gptq actOrder=true blockSize=128",
  );
});

Deno.test("run pages: the per-layer weight and output errors of a quantized run, none for fp32", async () => {
  const records = await syntheticRecords({
    tasks: ["classify"],
    rankedMethods: ["lora"],
    unrankedMethods: [],
    targets: ["qv"],
    ranks: [4],
    quants: ["none", "nf4"],
    trainSizes: [64],
    seeds: 1,
    items: 4,
    curvePoints: 3,
    failures: 0,
  });
  const files = await renderReport(records, { resamples: 20 });
  const page = (r: RunRecord) => files.find((f) => f.path === `runs/${runPageName(r.runId)}`)!.text;
  const nf4 = records.find((r) => r.config.quant.scheme === "nf4")!;
  const q = quantFigures(nf4)!;
  assert.equal(q.layers.length, 14);
  const html = page(nf4);
  assert.match(html, /<h3>quantization per layer<\/h3>/);
  const l = q.layers[3];
  const cells = `<th>${l.name}</th><td class="num">nf4</td><td class="num">4.127</td><td class="num">${
    showError(l.relativeError)
  }</td><td class="num">${showError(l.outputRelativeError)}</td>`;
  assert.ok(html.includes(cells), cells);
  assert.ok(html.includes(`all 14 layers`));
  // The mean row: the run-level means the record carries, to 3 significant digits.
  assert.ok(html.includes(`<td class="num">${showError(q.meanOutputRelativeError)}</td>`));
  assert.equal(showError(0.0045234), "0.00452");
  assert.ok(html.includes('id="chart-quant-layers"'));
  const none = records.find((r) => r.config.quant.scheme === "none")!;
  assert.equal(quantLayerRows(none), null);
  assert.ok(!page(none).includes("quantization per layer"));
});
