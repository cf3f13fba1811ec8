/**
 * Reports of benchmark results: `buildReport(resultsDir, outDir)` reads the run records of a
 * results folder and writes a static site (index.html, runs/*.html) plus REPORT.md and
 * charts/*.svg.
 * @module
 */
import { readRecords } from "../bench/record.ts";
import { InputError } from "../models/util/args.ts";
import { renderReport, type ReportOptions, writeReport } from "./site.ts";

export {
  checkOutputFolder,
  renderReport,
  type ReportFile,
  type ReportOptions,
  runPageName,
  writeReport,
} from "./site.ts";

/** What {@link buildReport} produced. */
export interface BuildSummary {
  records: number;
  files: number;
  seconds: number;
}

/** Read `results`, render, write into `out`; bad input is an InputError (exit code 2). */
export async function buildReport(
  results: string,
  out: string,
  opts: ReportOptions = {},
): Promise<BuildSummary> {
  const t0 = performance.now();
  let records;
  try {
    records = await readRecords(results);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  if (records.length === 0) {
    throw new InputError(
      `no run records in ${results} (run \`deno task bench\` first, or point --results at its --out)`,
    );
  }
  const files = await renderReport(records, opts);
  await writeReport(out, files);
  return { records: records.length, files: files.length, seconds: (performance.now() - t0) / 1000 };
}
