/**
 * `deno task eval-run --qrels FILE --run FILE [--complete] [--json]`: score a TREC run against TREC qrels and
 * print trec_eval-style summary lines, `printf("%-22s\t%s\t%6.4f\n", measure, "all", value)` as
 * trec_eval's meas_print_final.c (num_q as an integer), or with `--json` one JSON object.
 *
 * Measures, each averaged over the run's queries (trec_eval's default set, whose size is num_q;
 * a run query the qrels lack is an error, as in trec_eval 10), or with `--complete` (trec_eval
 * `-c`) over every qrels query, one missing from the run scoring 0: map, recip_rank, P_5, P_10, recall_5, recall_10, ndcg, ndcg_cut_5,
 * ndcg_cut_10, with trec_eval's definitions (see bench/metrics/ranking.ts).
 * `--help` lists the options. Bad flags, missing or malformed files: one line on stderr, exit code 2.
 * @module
 */
import { helpText, InputError, type OptionSpec, parseCli, UsageError } from "../models/util/args.ts";
import { readFileOrExplain } from "../models/util/io.ts";
import {
  checkRunQueriesJudged,
  evaluate,
  type Qrels,
  queriesToAverage,
  type QueryMetric,
  rankingMeasure,
  type Run,
} from "../bench/metrics/ranking.ts";
import { EVAL_RUN_METRICS, metricSpec } from "../bench/metrics/table.ts";
import { parseQrels, parseRun } from "../bench/metrics/trec.ts";

/**
 * The measures reported, in output order, with their trec_eval names: the metric table's
 * {@link EVAL_RUN_METRICS}, named and computed as the table and the retrieve task name them.
 */
export const MEASURES: ReadonlyArray<[string, QueryMetric]> = EVAL_RUN_METRICS.map((name) => [
  metricSpec(name)!.trecName!,
  rankingMeasure(name),
]);

/**
 * Summary measures of a run: num_q = |run queries ∩ qrels queries| (|qrels queries| when
 * `complete`, trec_eval `-c`) and, for each of {@link MEASURES}, mean = (1/num_q) * sum over those
 * queries of the per-query value. Throws, as trec_eval 10 does, when the run has a query the
 * qrels lack.
 */
export function summarize(qrels: Qrels, run: Run, complete = false): Record<string, number> {
  checkRunQueriesJudged(qrels, run);
  const over = complete ? "complete" : "trec_eval";
  const out: Record<string, number> = { num_q: queriesToAverage(qrels, run, over).length };
  for (const [name, metric] of MEASURES) out[name] = evaluate(qrels, run, metric, over).mean;
  return out;
}

/** Format measures as trec_eval does: `%-22s\tall\t%6.4f` (num_q as an integer). */
export function formatTrecEval(measures: Record<string, number>): string {
  return Object.entries(measures)
    .map(([name, v]) =>
      `${name.padEnd(22)}\tall\t${name === "num_q" ? String(v) : v.toFixed(4).padStart(6)}\n`
    )
    .join("");
}

/** The command's options (see `--help`). */
export const EVAL_RUN_SPEC = {
  qrels: { type: "string", help: "TREC qrels file: QUERY ITER DOC RELEVANCE per line" },
  run: { type: "string", help: "TREC run file: QUERY Q0 DOC RANK SCORE TAG per line" },
  complete: {
    type: "boolean",
    default: false,
    help: "average over every qrels query, 0 for one missing from the run (trec_eval -c)",
  },
  json: { type: "boolean", default: false, help: "print one JSON object instead of trec_eval lines" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

const USAGE = "deno task eval-run --qrels FILE --run FILE [--complete] [--json]";

/**
 * Run the command on its arguments; returns what it prints on stdout (the help text for
 * `--help`). Bad flags are {@link UsageError}s, missing or malformed files {@link InputError}s.
 */
export async function evalRun(args: string[]): Promise<string> {
  const { values } = parseCli(args, EVAL_RUN_SPEC);
  if (values.help) return helpText(USAGE, EVAL_RUN_SPEC) + "\n";
  if (!values.qrels || !values.run) {
    throw new UsageError(`missing ${!values.qrels ? "--qrels" : "--run"} FILE (usage: ${USAGE})`);
  }
  try {
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    const qrels = parseQrels(decode(await readFileOrExplain(values.qrels, "qrels file")), values.qrels);
    const run = parseRun(decode(await readFileOrExplain(values.run, "run file")), values.run);
    const measures = summarize(qrels, run, values.complete);
    return values.json ? JSON.stringify(measures) + "\n" : formatTrecEval(measures);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

// Not runMain: the task runs with --allow-read only, and runMain reads PEFT_BENCH_DEBUG. Every
// error here is a usage or input error, so every one exits 2.
if (import.meta.main) {
  try {
    await Deno.stdout.write(new TextEncoder().encode(await evalRun(Deno.args)));
  } catch (err) {
    console.error(`eval-run: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(2);
  }
}
