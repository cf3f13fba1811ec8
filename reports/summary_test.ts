import assert from "node:assert/strict";
import { buildStudies } from "./data.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";
import { Rng } from "../models/util/rng.ts";
import { csvField, metricHeader, summaryCsv, summaryTex, texEscape } from "./summary.ts";
import { renderReport } from "./site.ts";

/** Two seeds of one config with known accuracy, time, memory and final loss. */
async function records() {
  const out = [];
  for (const [seed, acc, secs, loss] of [[0, 0.6, 90, 1.5], [1, 0.7, 150, 2.5]]) {
    const r = await fixtureRecord(
      fixtureConfig({ seed, dataset: 'news_ru, 100% "cyr"' }),
      new Rng(seed),
      10,
      3,
    );
    r.metrics = { accuracy: acc, macroF1: acc - 0.1 };
    r.timing.trainSeconds = secs;
    r.memory.peakTrainBytes = 3 * 1024 * 1024;
    r.curve[r.curve.length - 1].loss = loss;
    out.push(r);
  }
  return out;
}

/** Parse one RFC 4180 line (quoted fields with doubled quotes). */
function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  const re = /(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g;
  for (const m of line.matchAll(re)) out.push(m[1] !== undefined ? m[1].replaceAll('""', '"') : m[2]);
  return out;
}

Deno.test("metric headers carry their units; proportions are shown in %", () => {
  assert.equal(metricHeader("accuracy"), "accuracy (%)");
  assert.equal(metricHeader("recall@5"), "recall@5 (%)");
  assert.equal(metricHeader("perplexity"), "perplexity");
  assert.equal(metricHeader("bitsPerByte"), "bitsPerByte (bits per byte)");
  assert.equal(metricHeader("unknownThing"), "unknownThing");
});

Deno.test("summary.csv: means and SDs in the units the columns name, RFC 4180 quoting", async () => {
  const csv = summaryCsv(buildStudies(await records()));
  const [head, row] = csv.trim().split("\n").map(parseCsvLine);
  const get = (k: string) => row[head.indexOf(k)];
  assert.equal(get("dataset"), 'news_ru, 100% "cyr"');
  assert.equal(Number(get("accuracy_pct_mean")), 65);
  // SD of 60 and 70 (n - 1): 7.0710678...
  assert.ok(Math.abs(Number(get("accuracy_pct_sd")) - Math.SQRT2 * 5) < 1e-9);
  assert.equal(Number(get("train_time_min_mean")), 2);
  assert.equal(Number(get("peak_train_memory_MiB_mean")), 3);
  assert.equal(Number(get("final_train_loss_mean")), 2);
  assert.equal(get("seeds"), "2");
  assert.equal(csvField('a"b'), '"a""b"');
  assert.equal(csvField(NaN), "");
});

Deno.test("summary.tex: a booktabs table with escaped text and units in the headers", async () => {
  const tex = summaryTex(buildStudies(await records()));
  assert.match(tex, /\\toprule\n.*accuracy \(\\%\) & .*train time \(min\) & peak train memory \(MiB\)/);
  assert.match(tex, /\\midrule\n.* & 2 & 65\.00 \$\\pm\$ 7\.07 & /);
  assert.match(tex, /\\caption\{classify on news\\_ru, 100\\% "cyr": mean \$\\pm\$ SD over seeds\}/);
  assert.match(tex, /\\bottomrule\n\\end\{tabular\}/);
  assert.equal(
    texEscape("a_b & {c} ~ ^ \\"),
    "a\\_b \\& \\{c\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}",
  );
});

Deno.test("the report writes summary.csv and summary.tex beside REPORT.md, whose table has units", async () => {
  const files = await renderReport(await records(), { resamples: 20 });
  const paths = files.map((f) => f.path);
  assert.ok(paths.includes("summary.csv") && paths.includes("summary.tex"));
  const md = files.find((f) => f.path === "REPORT.md")!.text;
  assert.match(
    md,
    /\| accuracy \(%\) \| macroF1 \(%\) \| train time \(min\) \| peak train memory \(MiB\) \|/,
  );
  assert.match(md, /\| 65\.00 ± 7\.07 \|/);
});
