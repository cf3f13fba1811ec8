/**
 * `deno task eval-run --qrels FILE --run FILE [--json]`: score a TREC run against TREC qrels and
 * print trec_eval-style summary lines, `printf("%-22s\t%s\t%6.4f\n", measure, "all", value)` as
 * trec_eval's meas_print_final.c (num_q as an integer), or with `--json` one JSON object.
 *
 * Measures, each averaged over the run's queries that appear in the qrels (trec_eval's default
 * set, whose size is num_q): map, recip_rank, P_5, P_10, recall_5, recall_10, ndcg, ndcg_cut_5,
 * ndcg_cut_10, with trec_eval's definitions (see bench/metrics/ranking.ts).
 * Bad flags, missing or malformed files: one line on stderr, exit code 2.
 * @module
 */
import { parseArgs } from "node:util";
import { readFileOrExplain } from "../models/io.ts";
import {
  averagePrecision,
  evaluate,
  ndcg,
  precisionAt,
  type Qrels,
  queriesToAverage,
  type QueryMetric,
  recallAt,
  reciprocalRank,
  type Run,
} from "../bench/metrics/ranking.ts";
import { parseQrels, parseRun } from "../bench/metrics/trec.ts";

/** The measures reported, in output order, with their trec_eval names. */
export const MEASURES: ReadonlyArray<[string, QueryMetric]> = [
  ["map", (r, j) => averagePrecision(r, j)],
  ["recip_rank", (r, j) => reciprocalRank(r, j)],
  ["P_5", (r, j) => precisionAt(r, j, 5)],
  ["P_10", (r, j) => precisionAt(r, j, 10)],
  ["recall_5", (r, j) => recallAt(r, j, 5)],
  ["recall_10", (r, j) => recallAt(r, j, 10)],
  ["ndcg", (r, j) => ndcg(r, j)],
  ["ndcg_cut_5", (r, j) => ndcg(r, j, { k: 5 })],
  ["ndcg_cut_10", (r, j) => ndcg(r, j, { k: 10 })],
];

/**
 * Summary measures of a run: num_q = |run queries ∩ qrels queries| and, for each of
 * {@link MEASURES}, mean = (1/num_q) * sum over those queries of the per-query value.
 */
export function summarize(qrels: Qrels, run: Run): Record<string, number> {
  const out: Record<string, number> = { num_q: queriesToAverage(qrels, run).length };
  for (const [name, metric] of MEASURES) out[name] = evaluate(qrels, run, metric).mean;
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

/** An error the command reports as one line and exit code 2. */
export class UsageError extends Error {}

/** Run the command on its arguments; returns what it prints on stdout. Throws {@link UsageError}. */
export async function evalRun(args: string[]): Promise<string> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        qrels: { type: "string" },
        run: { type: "string" },
        json: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message.split("\n")[0]} (usage: eval-run --qrels FILE --run FILE [--json])`,
    );
  }
  if (!values.qrels || !values.run) {
    throw new UsageError(
      `missing ${
        !values.qrels ? "--qrels" : "--run"
      } FILE (usage: eval-run --qrels FILE --run FILE [--json])`,
    );
  }
  try {
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    const qrels = parseQrels(decode(await readFileOrExplain(values.qrels, "qrels file")), values.qrels);
    const run = parseRun(decode(await readFileOrExplain(values.run, "run file")), values.run);
    const measures = summarize(qrels, run);
    return values.json ? JSON.stringify(measures) + "\n" : formatTrecEval(measures);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

if (import.meta.main) {
  try {
    await Deno.stdout.write(new TextEncoder().encode(await evalRun(Deno.args)));
  } catch (err) {
    console.error(`eval-run: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(2);
  }
}
