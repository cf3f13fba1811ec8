/**
 * Opens a generated report from disk in headless Chromium (Debian's `chromium` package, driven
 * by playwright-core): no console errors, every chart's SVG present, filtering and sorting
 * work, and a hostile run name shows as text without running; the findings answer the sweep
 * file's hypotheses, and a run page lays out its per-class table, confusion heat map and
 * per-layer quantization table. Saves screenshots to a temp folder and prints their paths.
 * Skipped when /usr/bin/chromium is absent (`apt-get install -y chromium`).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { renderReport, runPageName, writeReport } from "./site.ts";
import { hostileRecord, hypothesisStudy, syntheticRecords } from "./testing.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.warn(`SKIP browser_test: ${CHROMIUM} not found (install it with: apt-get install -y chromium)`);
}

Deno.test({
  name:
    "report site in headless Chromium: no console errors, charts, filtering, sorting, no script injection",
  ignore: !hasChromium,
  // Chromium keeps pipes and timers of its own open across the test.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // playwright-core probes /proc/sys/fs/binfmt_misc at import (is-wsl), which Deno only allows
    // under --allow-all; this switch defers that probe to the `open` helper we never call.
    Deno.env.set("__IS_WSL_TEST__", "1");
    const { chromium } = await import("playwright-core");
    const dir = await Deno.makeTempDir({ prefix: "peft-report-browser-" });
    const out = join(dir, "site");
    const records = [
      ...await syntheticRecords({
        ranks: [4, 16],
        trainSizes: [64, 256],
        seeds: 2,
        items: 10,
        curvePoints: 6,
      }),
      await hostileRecord(),
    ];
    await writeReport(out, await renderReport(records, { resamples: 100, permutations: 200 }));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const dialogs: string[] = [];
      page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
      page.on("request", (r) => !r.url().startsWith("file:") && problems.push(`network request: ${r.url()}`));
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        d.dismiss();
      });
      await page.goto(pathToFileURL(join(out, "index.html")).href);
      await page.waitForLoadState("load");

      // Every chart figure holds a rendered SVG with text.
      const charts = await page.$$eval(
        "figure.chart",
        (fs) =>
          fs.map((f) => ({
            id: f.id,
            svg: !!f.querySelector("svg"),
            texts: f.querySelectorAll("svg text").length,
          })),
      );
      const svgFiles = [...Deno.readDirSync(join(out, "charts"))].length;
      assert.equal(charts.length, svgFiles);
      for (const c of charts) assert.ok(c.svg && c.texts > 0, `${c.id} has an SVG with text`);

      // Filtering the classification table.
      const table = "#runs-classify-fixture-topics";
      const visible = () =>
        page.$$eval(
          `${table} tbody tr`,
          (rs) =>
            rs.filter((r) => !(r as unknown as { hidden: boolean }).hidden).map((r) => r.textContent ?? ""),
        );
      const before = (await visible()).length;
      await page.fill(`input[data-filter-for="runs-classify-fixture-topics"]`, "dora fp4");
      const after = await visible();
      assert.ok(after.length > 0 && after.length < before, `${after.length} of ${before} rows`);
      for (const t of after) assert.ok(t.includes("dora") && t.includes("fp4"), t);
      const counter = await page.textContent(`[data-count-for="runs-classify-fixture-topics"]`);
      assert.equal(counter, `${after.length} of ${before} rows`);
      await page.fill(`input[data-filter-for="runs-classify-fixture-topics"]`, "");
      assert.equal((await visible()).length, before);

      // Sorting by the accuracy column, ascending then descending; failed rows stay last.
      const col = await page.$$eval(
        `${table} thead th`,
        (ths) => ths.findIndex((t) => t.textContent?.trim() === "accuracy (%)"),
      );
      const values = () =>
        page.$$eval(
          `${table} tbody tr.ok`,
          (rs, c) => rs.map((r) => Number(r.children[c as number].getAttribute("data-sort"))),
          col,
        );
      await page.click(`${table} thead th:nth-child(${col + 1})`);
      const asc = await values();
      assert.deepEqual(asc, [...asc].sort((a, b) => a - b));
      await page.click(`${table} thead th:nth-child(${col + 1})`);
      const desc = await values();
      assert.deepEqual(desc, [...desc].sort((a, b) => b - a));
      const lastRow = await page.$eval(`${table} tbody tr:last-child`, (r) => r.className);
      assert.equal(lastRow, "failed");

      // The hostile study shows its payload as text and runs nothing.
      const shown = await page.textContent("body");
      assert.ok(shown?.includes("lora<script>alert(1)</script>"), "payload visible as text");
      const screenshot = join(dir, "report.png");
      await page.screenshot({ path: screenshot, fullPage: false });
      console.log(`screenshot: ${screenshot}`);

      // A run page, the hostile one included, loads cleanly too.
      await page.goto(
        pathToFileURL(join(out, "runs", runPageName("hostile-<script>alert(1)</script>"))).href,
      );
      const h1 = await page.textContent("h1");
      assert.ok(h1?.includes("<script>alert(1)</script>"));
      assert.ok((await page.$$("figure.chart svg")).length >= 2);
      assert.deepEqual(dialogs, [], "no alert ran");
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
});

/** What a table under an `<h3>` of a run page looks like in the browser. */
interface TableView {
  visible: boolean;
  columns: (string | null)[];
  rows: (string | null)[][];
  heat: { share: number; background: string }[];
}

/**
 * The browser's window as the page callbacks use it (this file is type-checked without the DOM
 * library; the callbacks run in Chromium, where these exist).
 */
type BrowserWindow = {
  getComputedStyle(e: unknown): { color: string; backgroundColor: string };
  scrollY: number;
};

/** Chromium flags of these tests: headless, no sandbox (containers), nothing fetched in the background. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

Deno.test({
  name:
    "findings with hypothesis answers and a run page's tables and heat map, laid out in headless Chromium",
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    Deno.env.set("__IS_WSL_TEST__", "1");
    const { chromium } = await import("playwright-core");
    const dir = await Deno.makeTempDir({ prefix: "peft-report-browser-" });
    const out = join(dir, "site");
    const { records, sweep } = await hypothesisStudy([
      {
        factor: "quant",
        compare: ["none", "nf4+dq"],
        claim: "equivalent",
        margin: 0.01,
        name: "QLoRA loses nothing",
      },
      { factor: "train-per-class", claim: "increases" },
      { factor: "rank", claim: "no effect" },
    ]);
    await writeReport(out, await renderReport(records, { resamples: 50, sweep }));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
      page.on("request", (r) => !r.url().startsWith("file:") && problems.push(`network request: ${r.url()}`));
      await page.goto(pathToFileURL(join(out, "index.html")).href);
      await page.waitForLoadState("load");

      // The hypotheses, answered in the findings, above the first study and in their colours.
      const answers = await page.$$eval("#findings ol.hypotheses > li", (lis) =>
        lis.map((li) => {
          const strong = li.querySelector("strong.answer")!;
          const box = strong.getBoundingClientRect();
          return {
            answer: li.getAttribute("data-answer"),
            text: (li as unknown as { innerText: string }).innerText,
            shown: strong.textContent,
            color: (globalThis as unknown as BrowserWindow).getComputedStyle(strong).color,
            visible: box.width > 0 && box.height > 0,
            top: li.getBoundingClientRect().top + (globalThis as unknown as BrowserWindow).scrollY,
          };
        }));
      assert.deepEqual(answers.map((a) => a.answer), ["supported", "inconclusive", "contradicted"]);
      assert.deepEqual(answers.map((a) => a.shown), ["supported", "inconclusive", "contradicted"]);
      assert.ok(answers.every((a) => a.visible), "every answer is laid out");
      // .answer-supported, -inconclusive, -contradicted of style.css.hbs, as the browser computes them.
      assert.deepEqual(answers.map((a) => a.color), [
        "rgb(21, 128, 61)",
        "rgb(146, 64, 14)",
        "rgb(185, 28, 28)",
      ]);
      assert.match(
        answers[0].text,
        /^QLoRA loses nothing: quant none and nf4\+dq are equivalent within ±1\.0 accuracy points — supported: the interval lies inside ±1\.0 accuracy points: none − nf4\+dq [+-]0\.0 accuracy points \(90% CI \[/,
      );
      assert.match(
        answers[1].text,
        /no rise shown at 8 → 32 \+1\.0 accuracy points \(95% CI \[-0\.7, 2\.7\]/,
      );
      assert.match(answers[2].text, /the difference exceeds the margin ±1\.0 accuracy points: 4 − 16 -3\.0/);
      const studyTop = await page.$eval(
        "section.study",
        (s) => s.getBoundingClientRect().top + (globalThis as unknown as BrowserWindow).scrollY,
      );
      assert.ok(answers.every((a) => a.top < studyTop), "findings come before the study");
      const shot = join(dir, "findings.png");
      await page.locator("#findings").screenshot({ path: shot });
      console.log(`screenshot: ${shot}`);

      // A quantized lora run's page: per-class table, confusion heat map, per-layer quantization.
      const run = records.find((r) => r.config.method === "lora" && r.config.quant.scheme === "nf4")!;
      await page.goto(pathToFileURL(join(out, "runs", runPageName(run.runId))).href);
      await page.waitForLoadState("load");
      const tables: Record<string, TableView | null> = await page.$$eval(
        "h3",
        (hs) =>
          Object.fromEntries(hs.map((h) => {
            const t = h.nextElementSibling;
            if (!t || t.tagName !== "TABLE") return [h.textContent, null];
            const box = t.getBoundingClientRect();
            return [h.textContent, {
              visible: box.width > 0 && box.height > 0,
              columns: [...t.querySelectorAll("thead th")].map((c) => c.textContent),
              rows: [...t.querySelectorAll("tbody tr")].map((r) => [...r.children].map((c) => c.textContent)),
              heat: [...t.querySelectorAll("td.heat")].map((c) => ({
                share: Number(
                  (c as unknown as { style: { getPropertyValue(k: string): string } }).style.getPropertyValue(
                    "--share",
                  ),
                ),
                background: (globalThis as unknown as BrowserWindow).getComputedStyle(c).backgroundColor,
              })),
            }];
          })),
      );
      const perClass = tables.perClass!;
      assert.ok(perClass.visible);
      assert.deepEqual(perClass.columns.slice(1, 4), ["precision", "recall", "f1"]);
      assert.deepEqual(perClass.rows.map((r) => r[0]), ["world", "sports", "business", "science"]);
      assert.ok(
        perClass.rows.every((r) => r.slice(1).every((c) => /^\d/.test(c ?? ""))),
        "numbers, not JSON",
      );
      const confusion = tables.confusion!;
      assert.ok(confusion.visible);
      assert.deepEqual(confusion.columns.slice(1), ["world", "sports", "business", "science"]);
      assert.ok(confusion.heat.length >= 4, "heat-shaded cells");
      // Each cell's colour is the style's rgba(29, 78, 216, share x 0.6), as Chromium resolves it.
      for (const cell of confusion.heat) {
        const m = /^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$/.exec(cell.background);
        assert.ok(m, cell.background);
        const alpha = m[4] === undefined ? 1 : Number(m[4]);
        if (cell.share === 0) assert.ok(alpha === 0, cell.background);
        else {
          assert.deepEqual([m[1], m[2], m[3]], ["29", "78", "216"]);
          assert.ok(Math.abs(alpha - cell.share * 0.6) < 0.01, `${cell.background} for share ${cell.share}`);
        }
      }
      const quant = tables["quantization per layer"]!;
      assert.ok(quant.visible);
      assert.ok(quant.columns.includes("weight rel. error") && quant.columns.includes("bits per param"));
      // 2 decoder layers x 7 linears, then the run-level summary row.
      assert.equal(quant.rows.length, 15);
      assert.equal(quant.rows[0][0], "layers.0.attn.q");
      assert.match(quant.rows[14][0] ?? "", /^all 14 layers/);
      assert.ok(quant.rows.every((r) => r[1] === "nf4"), "scheme column");
      const runShot = join(dir, "run.png");
      // Scroll the details into view for the screenshot (the metrics and charts come first).
      await page.locator("h2", { hasText: "Per-class results" }).scrollIntoViewIfNeeded();
      await page.screenshot({ path: runShot });
      console.log(`screenshot: ${runShot}`);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
});
