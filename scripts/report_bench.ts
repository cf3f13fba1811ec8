/**
 * Benchmark (not a test): render a report of 1,000 synthetic records (reports/testing.ts
 * fixtures) into a temp folder and print the time. Target: under 10 s.
 * `deno run --allow-read --allow-write --allow-env --allow-sys scripts/report_bench.ts [N]`
 * @module
 */
import { renderReport, writeReport } from "../reports/site.ts";
import { syntheticRecords } from "../reports/testing.ts";

const n = Number(Deno.args[0] ?? 1000);
if (!Number.isInteger(n) || n < 1) {
  console.error(`error: record count must be a positive integer, got '${Deno.args[0]}'`);
  Deno.exit(2);
}
// Enough seeds that the 3-task grid (162 configs x seeds) reaches n records.
const records = await syntheticRecords({ seeds: Math.ceil(n / 160), limit: n });
const out = await Deno.makeTempDir({ prefix: "peft-report-bench-" });
const t0 = performance.now();
const files = await renderReport(records, {});
const t1 = performance.now();
await writeReport(out, files);
const t2 = performance.now();
console.log(
  `${records.length} records: render ${((t1 - t0) / 1000).toFixed(2)} s, write ${
    ((t2 - t1) / 1000).toFixed(2)
  } s, ` +
    `total ${((t2 - t0) / 1000).toFixed(2)} s (${files.length} files in ${out})`,
);
await Deno.remove(out, { recursive: true });
