/**
 * Forgetting in the report (issue 21 item 5): the table column, summary.csv, the gain-vs-forgetting
 * chart with its Pareto frontier, and the findings sentence, on hand-set numbers whose means,
 * paired differences and t intervals are worked out below (t(0.975, 2) = 4.3027 from the table).
 */
import assert from "node:assert/strict";
import { analyzeStudy } from "./analysis.ts";
import { buildStudies } from "./data.ts";
import { renderReport } from "./site.ts";
import { studyCharts } from "./charts.ts";
import { forgettingFindings } from "./forgetting.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunConfig, RunRecord } from "../bench/record.ts";

/** Seeds 0..2 of one configuration with the given accuracies and forgetting deltas. */
async function config(over: Partial<RunConfig>, acc: number[], forgot: number[], text = "sotu-test") {
  const out: RunRecord[] = [];
  for (const seed of [0, 1, 2]) {
    const r = await fixtureRecord(fixtureConfig({ ...over, seed }), new Rng(seed), 4, 3);
    r.metrics = { accuracy: acc[seed] };
    r.forgetting = { text, tokens: 2048, nllBefore: 3, nllAfter: 3 + forgot[seed], delta: forgot[seed] };
    out.push(r);
  }
  return out;
}

const lora = (rank: number) => ({ methodOptions: { targets: "qv", rank, alpha: 16 } });

async function study(text4 = "sotu-test"): Promise<RunRecord[]> {
  return [
    ...await config({ method: "frozen", methodOptions: {} }, [0.40, 0.41, 0.42], [0, 0, 0]),
    ...await config(lora(4), [0.60, 0.62, 0.61], [0.010, 0.012, 0.011], text4),
    ...await config(lora(16), [0.63, 0.64, 0.62], [0.030, 0.034, 0.032]),
    ...await config({ method: "dora", ...lora(16) }, [0.50, 0.51, 0.49], [0.05, 0.05, 0.06]),
  ];
}

Deno.test("gain over frozen against forgetting: paired gains, frontier, chart", async () => {
  const [s] = buildStudies(await study());
  const a = analyzeStudy(s, { resamples: 50 });
  const v = a.forgetting!;
  assert.equal(v.relative, true);
  assert.deepEqual(v.texts, ["sotu-test"]);
  const by = new Map(v.points.map((p) => [p.group.label, p]));
  // Gains in accuracy points, paired by seed with frozen: r4 (20, 21, 19), r16 (23, 23, 20), dora (10, 10, 7).
  const near = (x: number, y: number) => Math.abs(x - y) < 1e-9;
  assert.ok(near(by.get("lora qv r4 n64")!.gain, 20));
  assert.ok(near(by.get("lora qv r16 n64")!.gain, 22));
  assert.ok(near(by.get("dora qv r16 n64")!.gain, 9));
  assert.equal(by.get("frozen n64")!.gain, 0);
  // Frontier (least forgetting for a gain): frozen (0, 0), r4 (0.011, 20), r16 (0.032, 22); dora is dominated.
  assert.deepEqual(
    v.points.filter((p) => p.frontier).map((p) => p.group.label).sort(),
    ["frozen n64", "lora qv r16 n64", "lora qv r4 n64"],
  );
  const chart = studyCharts(s, a).find((c) => c.id === "forgetting")!;
  assert.equal(chart.values.length, 4);
  const dora = chart.values.find((x) => x.config === "dora qv r16 n64")!;
  assert.equal(dora.frontier, "dominated");
  assert.ok(near(dora.forgetting as number, (0.05 + 0.05 + 0.06) / 3));
  assert.match(chart.title, /accuracy gain over frozen vs forgetting/);
});

Deno.test("findings: who forgets least within the best's interval, with the paired difference", async () => {
  const [s] = buildStudies(await study());
  const a = analyzeStudy(s, { resamples: 50 });
  const lines = forgettingFindings(s, a.forgetting);
  // Best: lora r16, mean 0.63, SD 0.01: 95% t interval 0.63 ± 4.3027 x 0.01 / sqrt(3) = [60.52, 65.48] points;
  // lora r4 (61) is inside, frozen and dora are not. Paired r4 - r16: -0.020, -0.022, -0.021 -> mean
  // -0.021, SD 0.001, CI -0.021 ± 4.3027 x 0.001 / sqrt(3) = [-0.0235, -0.0185].
  assert.ok(
    lines.includes(
      "Among the 2 configurations whose mean accuracy lies within the best's (lora qv r16 n64) 95% t " +
        "interval [60.52, 65.48], lora qv r4 n64 forgets least (+0.0110 ± 0.0010 against the best's " +
        "+0.0320 ± 0.0020); paired over 3 seeds the difference is −0.0210 (95% CI [−0.0235, −0.0185]): " +
        "it forgets less.",
    ),
    lines.join("\n"),
  );
  assert.match(
    lines[0],
    /from \+0\.0000 ± 0\.0000 \(frozen n64\) to \+0\.0533 ± 0\.0058 \(dora qv r16 n64\)/,
  );
  assert.match(
    lines[2],
    /^Pareto frontier of accuracy gain over frozen .*: frozen n64; lora qv r4 n64; lora qv r16 n64\.$/,
  );
});

Deno.test("forgetting on two texts is not compared, and there is no chart", async () => {
  const [s] = buildStudies(await study("my-text.txt"));
  const a = analyzeStudy(s, { resamples: 50 });
  assert.deepEqual(forgettingFindings(s, a.forgetting).length, 1);
  assert.match(forgettingFindings(s, a.forgetting)[0], /2 different texts \(.*\): values on different texts/);
  assert.equal(studyCharts(s, a).find((c) => c.id === "forgetting"), undefined);
});

Deno.test("the table, summary.csv and summary.tex carry forgetting; the report has the chart", async () => {
  const files = await renderReport(await study(), { resamples: 50 });
  const get = (p: string) => files.find((f) => f.path === p)!.text;
  const md = get("REPORT.md");
  assert.match(md, /\| final train loss \| forgetting \(nats per token\) \| status \|/);
  assert.match(md, /\| \+0\.0110 ± 0\.0010 \| ok \|/);
  assert.match(get("index.html"), /<td class="num" data-sort="0\.0110*\d*">\+0\.0110 ± 0\.0010<\/td>/);
  const [head, ...rows] = get("summary.csv").trim().split("\n").map((l) => l.split(","));
  const r4 = rows.find((r) => r[head.indexOf("config")] === "lora qv r4 n64")!;
  assert.ok(Math.abs(Number(r4[head.indexOf("forgetting_nats_per_token_mean")]) - 0.011) < 1e-12);
  assert.ok(Math.abs(Number(r4[head.indexOf("forgetting_nats_per_token_sd")]) - 0.001) < 1e-12);
  assert.match(get("summary.tex"), /final train loss & forgetting \(nats per token\) \\\\/);
  assert.ok(files.some((f) => f.path === "charts/classify-fixture-topics-forgetting.svg"));
  assert.match(md, /- Among the 2 configurations whose mean accuracy lies within/);
});
