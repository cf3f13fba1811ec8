/**
 * Opens a generated report from disk in headless Chromium (Debian's `chromium` package, driven
 * by playwright-core): no console errors, every chart's SVG present, filtering and sorting
 * work, and a hostile run name shows as text without running. Saves a screenshot to a temp
 * folder and prints its path. Skipped when /usr/bin/chromium is absent
 * (`apt-get install -y chromium`).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { renderReport, runPageName, writeReport } from "./site.ts";
import { hostileRecord, syntheticRecords } from "./testing.ts";

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
