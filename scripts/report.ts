/**
 * `deno task report --results DIR --out DIR`: turn a results folder (one JSON record per run)
 * into a static report site (index.html, runs/<id>.html) and REPORT.md with charts/*.svg.
 * Bad flags or input: one line on stderr, exit code 2.
 * @module
 */
import { helpText, numberFlag, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { InputError } from "../models/util/args.ts";
import { buildReport, checkOutputFolder } from "../reports/mod.ts";
import type { SweepLevels } from "../reports/data.ts";
import { expandPlan, parseSweep } from "../bench/sweep_plan.ts";

/** The command's options. */
export const OPTIONS = {
  results: { type: "string", help: "results folder with one run record (.json) per run" },
  out: { type: "string", help: "output folder (new, empty, or a previous report)" },
  title: { type: "string", default: "peft-bench report", help: "report title" },
  seed: { type: "string", default: "0", help: "seed of the bootstrap and randomization streams" },
  resamples: { type: "string", default: "2000", help: "bootstrap resamples per confidence interval" },
  permutations: { type: "string", default: "5000", help: "sign-flip permutations per per-query pair" },
  margin: {
    type: "string",
    help: "equivalence margin for TOST, in the primary metric's difference unit (default: 1 point for " +
      "accuracy, F1, MRR, NDCG and recall; 1% of the study's mean for perplexity and other metrics)",
  },
  metric: {
    type: "string",
    help: "metric to analyse (macroF1, ndcg@10, bitsPerByte, ...; default: each task's primary metric from " +
      "bench/metrics/table.ts: accuracy, mrr, perplexity)",
  },
  sweep: {
    type: "string",
    help: "the sweep file the results came from: the report then names factors and levels as it does " +
      "(records do not carry them; without it they are derived from each run's config) and answers the " +
      "hypotheses it declares in the findings",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** The level names of a sweep file's plan by run id (bench/sweep_plan.ts expands it as the sweep does). */
export async function sweepLevels(path: string): Promise<SweepLevels> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new InputError(
      err instanceof Deno.errors.NotFound
        ? `sweep file not found: ${path} (check --sweep)`
        : `--sweep ${path}: ${(err as Error).message}`,
    );
  }
  const spec = parseSweep(json, path);
  const plan = await expandPlan(spec);
  return {
    source: path,
    factors: spec.factors.map((f) => f.name),
    byRun: new Map(plan.runs.map((r) => [r.runId, r.levels])),
    hypotheses: spec.hypotheses,
  };
}

/** Run the command on `args`. */
export async function main(args: string[], startWork: () => void = () => {}): Promise<void> {
  const { values } = parseCli(args, OPTIONS);
  if (values.help) {
    console.log(helpText("deno task report --results DIR --out DIR [options]", OPTIONS));
    return;
  }
  if (!values.results) throw new UsageError("--results is required: the folder of run records (see --help)");
  if (!values.out) throw new UsageError("--out is required: the folder to write the report to (see --help)");
  const positive = (n: number) => Number.isInteger(n) && n > 0;
  const opts = {
    title: values.title,
    metric: values.metric,
    seed: numberFlag("seed", values.seed, Number.isInteger),
    resamples: numberFlag("resamples", values.resamples, positive),
    permutations: numberFlag("permutations", values.permutations, positive),
    margin: values.margin === undefined
      ? undefined
      : numberFlag("margin", values.margin, (n) => Number.isFinite(n) && n > 0),
  };
  try {
    if (Deno.statSync(values.results).isFile) {
      throw new InputError(
        `--results ${values.results} is a file; pass the folder that holds the run records`,
      );
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new InputError(`results folder not found: ${values.results} (check --results)`);
    }
    throw err;
  }
  try {
    checkOutputFolder(values.out);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const sweep = values.sweep === undefined ? undefined : await sweepLevels(values.sweep);
  startWork();
  const s = await buildReport(values.results, values.out, { ...opts, sweep });
  console.log(
    `report: ${s.records} runs → ${values.out}/index.html and REPORT.md (${s.files} files, ${
      s.seconds.toFixed(1)
    } s)`,
  );
}

if (import.meta.main) runMain((startWork) => main(Deno.args, startWork));
