import assert from "node:assert/strict";
import { assertNoActiveContent, findActiveContent, renderReport, runPageName, writeReport } from "./site.ts";
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
    // summary.csv and summary.tex are data files, never rendered as markup: names stay verbatim.
    if (/\.(csv|tex)$/.test(f.path)) continue;
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
  assert.ok(get("REPORT.md").includes("lora&lt;script>alert(1)&lt;/script>"));
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
  assert.match(index, /\d{2}\.\d{2} ± \d\.\d{2}/, "accuracy in % with its SD");
  const links = [...index.matchAll(/href="(runs\/[^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(links).size, files.filter((f) => f.path.startsWith("runs/")).length);
  for (const l of links) assert.ok(files.some((f) => f.path === l.replaceAll("&#x3D;", "=")), l);
  assert.match(index, /<th data-sort-col[^>]*>sig\.<\/th>/, "retrieval table has significance letters");
  assert.match(index, /Kruskal-Wallis H<\/th><td>H &#x3D; \d/, "some factor has a Kruskal-Wallis result");
  assert.match(index, /Factorial ANOVA over the design/);
  assert.match(index, /type II sums of squares/);
  assert.doesNotMatch(index, /Two-way ANOVA|Balanced crossing at/);
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

Deno.test("findActiveContent: real markup is found, however it is spelled", () => {
  const whats = (m: string) => findActiveContent(m).map((a) => a.what);
  assert.deepEqual(whats("<svg><script>alert(1)</script></svg>"), ["<script>"]);
  assert.deepEqual(whats("<SVG><foreignObject><div/></foreignObject>"), ["<foreignobject>"]);
  assert.deepEqual(whats('<svg onload="x()">'), ["onload= on <svg>"]);
  assert.deepEqual(whats("<img src=x ONERROR=alert(1)>"), ["onerror= on <img>"]);
  assert.deepEqual(whats('<img/src="x"/onerror=alert(1)>'), ["onerror= on <img>"]);
  // Unquoted, the value runs to the next space: this is one src attribute, as in a browser.
  assert.deepEqual(whats("<img src=x/onerror=alert(1)>"), []);
  assert.deepEqual(whats(`<a title="a > b" onclick='x'>`), ["onclick= on <a>"]);
  assert.deepEqual(whats('<a xlink:href="javascript:alert(1)">'), ["xlink:href=javascript:alert(1) on <a>"]);
  assert.deepEqual(whats('<a href=" &#106;ava&#x73;cript&colon;x">'), ["href=javascript:x on <a>"]);
  assert.deepEqual(whats('<a href="java\tscript:x">'), ["href=javascript:x on <a>"]);
  assert.deepEqual(whats('<iframe src="data:text/html,<b>">'), [
    "<iframe>",
    "src=data:text/html,<b> on <iframe>",
  ]);
  assert.deepEqual(whats('<set attributeName="href" to="javascript:alert(1)"/>'), [
    "to=javascript:alert(1) on <set>",
  ]);
  assert.deepEqual(whats('<rect style="fill:url(javascript:x)"/>'), [
    "style=fill:url(javascript: on <rect>",
  ]);
  // Markup after a script's source is still scanned; a stray "=" does not end the scan.
  assert.deepEqual(whats("<script>if (a <b) x()</script><p =x onmouseover=y>"), [
    "<script>",
    "onmouseover= on <p>",
  ]);
});

Deno.test("findActiveContent: escaped text, text content, comments and plain attributes are not markup", () => {
  const none = (m: string) => assert.deepEqual(findActiveContent(m), [], m);
  none("<text>fixture &lt;img src=x onerror=alert(1)&gt; javascript:alert(1)</text>");
  none('<text aria-label="dataset x onerror=alert(1) javascript:alert(1)">x onerror=y</text>');
  none('<path d="M0,0" aria-roledescription="onerror=1"/><title>a onload=b</title>');
  none('<a href="runs/x.html">javascript: is a scheme</a><a href="#study-x">');
  none("<!-- <script>alert(1)</script> --><![CDATA[ <script> ]]><?xml version='1.0'?>");
  none("a < b and c <= d <");
  none('<p data-sort="onerror=x" title="javascript:x" x-on="1">');
});

Deno.test("assertNoActiveContent: only what the template itself holds", () => {
  const page = { path: "index.html", text: '<script type="application/json"></script><script>x</script>' };
  assertNoActiveContent(page, ["<script>", "<script>"]);
  assert.throws(
    () => assertNoActiveContent(page, ["<script>"]),
    /^Error: report: index\.html would contain active content \(<script> at offset 41\); nothing was written/,
  );
  assert.throws(
    () => assertNoActiveContent({ path: "charts/a.svg", text: '<svg><g onclick="x"></g></svg>' }),
    /charts\/a\.svg would contain active content \(onclick= on <g>/,
  );
});

Deno.test("a dataset or method named with onerror= and javascript: renders, shown as text, with no active content", async () => {
  const payload = '" onerror=alert(1) x="<img src=x onerror=alert(1)> javascript:alert(1)';
  const out = await renderReport([
    ...await syntheticRecords({ ...small, seeds: 2 }),
    await hostileRecord(payload),
  ], {
    resamples: 20,
    permutations: 20,
  });
  for (const f of out) {
    if (/\.(csv|tex)$/.test(f.path)) continue; // data files, not markup
    const active = findActiveContent(f.text).map((a) => a.what);
    assert.deepEqual(active, f.path === "index.html" ? ["<script>", "<script>"] : [], f.path);
  }
  const index = out.find((f) => f.path === "index.html")!.text;
  assert.ok(index.includes("onerror&#x3D;alert(1)"), "shown as escaped text");
  assert.ok(
    out.some((f) => f.path.endsWith(".svg") && f.text.includes("onerror=alert(1)")),
    "and in chart text",
  );
});
