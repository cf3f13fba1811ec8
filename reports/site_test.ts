import assert from "node:assert/strict";
import { renderReport, runPageName, writeReport } from "./site.ts";
import { hostileRecord, syntheticRecords } from "./testing.ts";

const PAYLOAD = "<script>alert(1)</script>";
const small = {
  ranks: [4, 16],
  quants: ["none", "nf4", "fp4"],
  trainSizes: [64, 256],
  seeds: 2,
  items: 12,
  curvePoints: 8,
};
const files = await renderReport([...await syntheticRecords(small), await hostileRecord()], {
  resamples: 100,
  permutations: 200,
});
const get = (p: string) => files.find((f) => f.path === p)!.text;

Deno.test("hostile names, methods and datasets are escaped in every HTML and Markdown file", () => {
  for (const f of files) {
    if (f.path.endsWith(".svg")) {
      assert.ok(!f.text.includes("<script"), f.path);
      continue;
    }
    // The index has exactly our two script elements; no other file has any.
    const scripts = f.text.match(/<script/g)?.length ?? 0;
    assert.equal(scripts, f.path === "index.html" ? 2 : 0, f.path);
    assert.ok(!f.text.includes(PAYLOAD), `${f.path} contains the raw payload`);
  }
  const index = get("index.html");
  assert.ok(index.includes("lora&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text in the table");
  // The embedded JSON escapes < so it cannot close its script element.
  const json = index.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)![1];
  assert.ok(!json.includes("<"));
  assert.ok(JSON.parse(json).some((s: { dataset: string }) => s.dataset === `fixture-topics${PAYLOAD}`));
  const page = get(`runs/${runPageName(`hostile-${PAYLOAD}`)}`);
  assert.ok(page.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(get("REPORT.md").includes("lora&#60;script&#62;alert\\(1\\)&#60;/script&#62;"));
});

Deno.test("every chart is an SVG with text, in the page and as a file the Markdown links", () => {
  const index = get("index.html");
  const md = get("REPORT.md");
  const svgs = files.filter((f) => f.path.startsWith("charts/"));
  assert.ok(svgs.length >= 3 * 13, `${svgs.length} charts`);
  for (const f of svgs) {
    assert.ok(f.text.startsWith("<svg"), f.path);
    assert.ok(/<text[^>]*>[^<]+<\/text>/.test(f.text), `${f.path} has no text`);
    assert.ok(md.includes(`(${f.path})`), `REPORT.md links ${f.path}`);
  }
  assert.equal(index.match(/<figure class="chart"/g)!.length, svgs.length);
  for (
    const id of [
      "pareto-memory",
      "pareto-time",
      "rank-by-targets",
      "trainsize-by-method",
      "nf4-vs-fp4",
      "loss",
      "memory",
      "latency",
      "box-quant",
    ]
  ) {
    assert.ok(files.some((f) => f.path === `charts/classify-fixture-topics-${id}.svg`), id);
  }
});

Deno.test("charts appear only when the data supports them", async () => {
  const only = await renderReport(
    await syntheticRecords({ ...small, tasks: ["lm"], quants: ["nf4"], trainSizes: [64] }),
    { resamples: 50 },
  );
  const paths = only.map((f) => f.path);
  assert.ok(!paths.some((p) => p.includes("nf4-vs-fp4")), "no NF4 vs FP4 without FP4");
  assert.ok(!paths.some((p) => p.includes("trainsize-by-method")), "one train size: no train-size chart");
  assert.ok(!paths.some((p) => p.includes("box-quant")));
  assert.ok(paths.includes("charts/lm-fixture-text-rank-by-targets.svg"));
});

Deno.test("table: one row per configuration, failed runs with their error, per-run pages linked", () => {
  const index = get("index.html");
  assert.ok(index.includes("out of memory: peak 9.1 GiB"));
  assert.equal(index.match(/<tr class="failed">/g)!.length, 3);
  assert.match(index, /0\.\d{3} ± 0\.\d{3}/);
  const links = [...index.matchAll(/href="(runs\/[^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(links).size, files.filter((f) => f.path.startsWith("runs/")).length);
  for (const l of links) assert.ok(files.some((f) => f.path === l.replaceAll("&#x3D;", "=")), l);
  assert.match(index, /<th data-sort-col[^>]*>sig\.<\/th>/, "retrieval table has significance letters");
  assert.match(index, /Kruskal-Wallis H<\/th><td>H &#x3D; \d/, "some factor has a Kruskal-Wallis result");
  assert.match(index, /Two-way ANOVA/);
});

Deno.test("writeReport refuses a non-empty folder that is not a report, refreshes one that is", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
    await assert.rejects(() => writeReport(dir, files), /not empty and holds no previous report/);
    const out = `${dir}/site`;
    await writeReport(out, [{ path: "runs/old.html", text: "old" }]);
    await writeReport(out, files.slice(0, 3));
    await assert.rejects(() => Deno.stat(`${out}/runs/old.html`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("diagnostics charts: on the index and run pages when runs carry diagnostics, absent otherwise", async () => {
  const records = await syntheticRecords({
    tasks: ["classify"],
    ranks: [4, 16],
    unrankedMethods: ["ia3", "full"],
    quants: ["none"],
    trainSizes: [64],
    seeds: 2,
    items: 12,
    curvePoints: 8,
    diagnostics: true,
  });
  const diag = await renderReport(records, { resamples: 50, permutations: 100 });
  const at = (p: string) => diag.find((f) => f.path === p)?.text;
  for (const id of ["diag-erank", "diag-entanglement"]) {
    const svg = at(`charts/classify-fixture-topics-${id}.svg`);
    assert.ok(svg?.startsWith("<svg"), id);
    assert.ok(at("index.html")!.includes(`data-chart="classify-fixture-topics-${id}"`), id);
    assert.ok(at("REPORT.md")!.includes(`(charts/classify-fixture-topics-${id}.svg)`), id);
  }
  const page = (method: string, rank: number | null) => {
    const r = records.find((r) =>
      r.status === "success" && r.config.method === method &&
      (rank === null || r.config.methodOptions.rank === rank)
    )!;
    return at(`runs/${runPageName(r.runId)}`)!;
  };
  const lora = page("lora", 4);
  assert.match(lora, /data-chart="diag-spectrum"/);
  assert.match(lora, /data-chart="diag-attention"/);
  assert.match(lora, /dashed: nominal rank 4/);
  // IA3 has no weight update to decompose (no deltaWeights), only attention entropy.
  assert.doesNotMatch(page("ia3", null), /diag-spectrum/);
  assert.match(page("ia3", null), /data-chart="diag-attention"/);
  assert.match(page("full", null), /data-chart="diag-spectrum"/);
  // The failed run has no diagnostics and so no diagnostics charts.
  const failed = records.find((r) => r.status === "failed")!;
  assert.doesNotMatch(at(`runs/${runPageName(failed.runId)}`)!, /diag-/);

  // Without diagnostics (the shared fixture above) no page has any of these charts.
  for (const f of files) {
    assert.ok(!f.path.includes("diag-") && !/data-chart="[^"]*diag-/.test(f.text), f.path);
  }
});
