import assert from "node:assert/strict";
import { runCharts, studyCharts } from "./charts.ts";
import { buildStudies } from "./data.ts";
import { syntheticRecords } from "./testing.ts";
import type { RunRecord } from "../bench/record.ts";

const records = await syntheticRecords({
  tasks: ["classify"],
  ranks: [4, 16],
  unrankedMethods: ["ia3", "full"],
  quants: ["none"],
  trainSizes: [64],
  seeds: 2,
  failures: 0,
  diagnostics: true,
});
const [study] = buildStudies(records);
const chart = (id: string) => studyCharts(study).find((c) => c.id === id)!;

type Layer = { effectiveRank: number; nominalRank: number; entanglement: { entropy: number[] } };
const layersOf = (r: RunRecord) => Object.values((r.diagnostics as { layers: Record<string, Layer> }).layers);
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function close(actual: unknown, expected: number, what: string): void {
  assert.ok(
    typeof actual === "number" && Math.abs(actual - expected) <= 1e-12,
    `${what}: ${actual} vs ${expected}`,
  );
}

Deno.test("effective rank chart: one point per run with layers, layer means of the records", () => {
  const withLayers = records.filter((r) => layersOf(r).length > 0);
  // lora and dora: 2 targets x 2 ranks x 2 seeds each; full: 2 seeds; IA3 has no layers.
  assert.equal(withLayers.length, 18);
  const c = chart("diag-erank");
  assert.equal(c.values.length, 18);
  for (const r of withLayers) {
    const p = c.values.find((v) =>
      v.config === study.groups.find((g) => g.runs.includes(r))!.label &&
      v.seed === r.config.seed
    )!;
    close(p.effective, mean(layersOf(r).map((l) => l.effectiveRank)), "effective");
    close(p.nominal, r.config.method === "full" ? 16 : r.config.methodOptions.rank as number, "nominal");
  }
});

Deno.test("entanglement chart: per configuration the mean over its runs' layers at every cut", () => {
  const c = chart("diag-entanglement");
  const g = study.groups.find((g) => g.label.startsWith("full"))!;
  const profiles = g.runs.flatMap((r) => layersOf(r).map((l) => l.entanglement.entropy));
  assert.equal(profiles.length, 2 * 8, "2 seeds x 8 layers");
  const rows = c.values.filter((v) => v.key === g.key);
  assert.deepEqual(rows.map((v) => v.cut), [1, 2, 3, 4, 5, 6, 7]);
  rows.forEach((v, i) => close(v.entropy, mean(profiles.map((p) => p[i])), `cut ${i + 1}`));
  // 16 x 16 layers: sites 2,2,2,2 | 2,2,2,2, so the rows | columns cut is l = 4.
  assert.deepEqual(c.spec.layer[1].data.values, [{ cut: 4 }]);
  // One series per configuration with layers (IA3 has none).
  assert.equal(new Set(c.values.map((v) => v.key)).size, study.groups.length - 1);
});

Deno.test("attention chart: measured points and the fit a + b ln l for frozen and adapted", () => {
  const r = records[0];
  const c = runCharts(r).find((c) => c.id === "diag-attention")!;
  const a = (r.diagnostics as {
    attention: Record<
      "frozen" | "adapted",
      { overall: { entropy: number[]; fit: { a: number; b: number } } }
    >;
  }).attention;
  for (const series of ["frozen", "adapted"] as const) {
    const rows = c.values.filter((v) => v.series === series);
    assert.deepEqual(rows.map((v) => v.length), [4, 8, 16, 32, 64]);
    rows.forEach((v, i) => {
      close(v.entropy, a[series].overall.entropy[i], "entropy");
      close(v.fit, a[series].overall.fit.a + a[series].overall.fit.b * Math.log(v.length as number), "fit");
    });
  }
  assert.ok(runCharts(r).some((c) => c.id === "diag-spectrum"));
});

Deno.test("no diagnostics charts when no run has diagnostics", async () => {
  const plain = await syntheticRecords({ tasks: ["classify"], quants: ["none"], trainSizes: [64], seeds: 2 });
  const ids = [...studyCharts(buildStudies(plain)[0]), ...plain.flatMap(runCharts)].map((c) => c.id);
  assert.ok(ids.length > 0 && !ids.some((id) => id.startsWith("diag-")), ids.join(","));
});
