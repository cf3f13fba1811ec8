/**
 * `deno task export-csv --results DIR [--out FILE]`: one tidy row per run record, for pandas and
 * spreadsheets. Fields are quoted per RFC 4180 (a field holding a comma, quote, CR or LF is
 * wrapped in quotes with inner quotes doubled; rows end in CRLF). Each metric gets its own column
 * (the union over all records, sorted; empty where a run lacks it); missing values are empty.
 * Trivial baselines get one `trivial[NAME]` column each (the baseline's value of the run's primary
 * metric: `bm25`, `random` and `unigram` as the task recorded them, `majority` derived from a
 * classification run's per-item labels, reports/trivial.ts), and tokenizer coverage four columns per
 * split (`unknown_share[SPLIT]`, `byte_fallback_share[SPLIT]`, `tokens_per_word[SPLIT]`,
 * `truncated_share[SPLIT]`). `forgetting_delta` is the run's forgetting (mean NLL per token of
 * held-out generic text after training minus before, nats; bench/forgetting.ts) and
 * `forgetting_text` the text it was scored on.
 * Text that a spreadsheet would run as a formula (a cell starting with `=`, `+`, `-`, `@`, tab or
 * CR, per OWASP's CSV-injection guidance) gets a leading apostrophe; numbers stay numbers.
 * Without `--out` the CSV goes to stdout.
 * @module
 */
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { readRecords, recordPrimary, type RunRecord } from "./record.ts";
import { runRank } from "./factors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { trivialScores } from "../reports/trivial.ts";

/** Flags of `export-csv`. */
export const EXPORT_SPEC = {
  results: { type: "string", help: "folder of run records" },
  out: { type: "string", help: "CSV file to write (default: stdout)" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal number (`-0.5`, `+3`, `1e-7`): harmless, and kept numeric. */
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Neutralise a text cell a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM(...)`,
 * `-2+3`): prefix an apostrophe, which spreadsheets show as text. Plain numbers are left alone.
 */
export function neutralizeFormula(text: string): string {
  return FORMULA_START.test(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}

/**
 * One CSV field: numbers as numbers (NaN and infinities, which JSON cannot hold, are empty),
 * text neutralised against formula injection, then quoted per RFC 4180 when it needs it.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const s = neutralizeFormula(String(value));
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Fixed columns: name and how to read it from a record. */
const COLUMNS: [string, (r: RunRecord) => unknown][] = [
  ["run_id", (r) => r.runId],
  ["name", (r) => r.name],
  ["status", (r) => r.status],
  ["task", (r) => r.config.task],
  ["dataset", (r) => r.config.dataset],
  ["model", (r) => r.config.model],
  ["method", (r) => r.config.method],
  ["targets", (r) => r.config.methodOptions.targets],
  ["rank", (r) => runRank(r.config)],
  ["alpha", (r) => r.config.methodOptions.alpha],
  ["quant", (r) => r.config.quant.scheme],
  ["double_quant", (r) => Boolean(r.config.quant.doubleQuant)],
  ["train_size", trainSize],
  ["train_per_class", (r) => r.config.trainPerClass],
  ["seed", (r) => r.config.seed],
  ["split_seed", (r) => r.config.splitSeed],
  ["epochs", (r) => r.config.epochs],
  ["steps", (r) => r.config.steps ?? (Array.isArray(r.curve) && r.curve.length ? r.curve.length : null)],
  ["lr", (r) => r.config.lr],
  ["head_lr", (r) => r.config.headLr],
  ["max_length", (r) => r.config.maxLength],
  ["batch_size", (r) => r.config.batchSize],
  ["max_eval", (r) => r.config.maxEval],
  ["backend", (r) => r.env?.backend],
  // From the record when its writer stored them, else from bench/metrics/table.ts.
  ["primary_metric", (r) => recordPrimary(r).name],
  ["primary_direction", (r) => recordPrimary(r).direction],
];

const TAIL: [string, (r: RunRecord) => unknown][] = [
  ["items_scored", (r) => (r.status === "success" && Array.isArray(r.perItem) ? r.perItem.length : null)],
  [
    "final_loss",
    (r) => (Array.isArray(r.curve) && r.curve.length ? r.curve[r.curve.length - 1]?.loss : null),
  ],
  ["train_seconds", (r) => r.timing?.trainSeconds],
  ["eval_seconds", (r) => r.timing?.evalSeconds],
  ["total_seconds", (r) => r.timing?.totalSeconds],
  ["train_tokens_per_second", (r) => r.timing?.trainTokensPerSecond],
  ["infer_latency_p50_ms", (r) => r.timing?.inferLatencyMs?.p50],
  ["peak_train_bytes", (r) => r.memory?.peakTrainBytes],
  ["peak_infer_bytes", (r) => r.memory?.peakInferBytes],
  ["trainable_params", (r) => r.size?.trainableParams],
  ["total_params", (r) => r.size?.totalParams],
  ["adapter_bytes", (r) => r.size?.adapterBytes],
  ["bits_per_frozen_param", (r) => r.size?.bitsPerFrozenParam],
  // Forgetting (bench/forgetting.ts): NLL per token of the generic text after minus before, nats.
  ["forgetting_delta", (r) => r.forgetting?.delta],
  ["forgetting_text", (r) => r.forgetting?.text],
  ["start_time", (r) => r.env?.startTime],
  ["error", (r) => r.error],
];

/**
 * Training-set size of a run: `--train-size` when given, else `--train-per-class` times the
 * number of classes the task scored (`details.perClass`), an upper bound when a class has fewer
 * examples; empty when neither is known (`all`, or no per-class details).
 */
function trainSize(r: RunRecord): number | null {
  if (typeof r.config.trainSize === "number") return r.config.trainSize;
  const per = r.config.trainPerClass;
  const classes = Array.isArray(r.details?.perClass) ? r.details.perClass.length : 0;
  return typeof per === "number" && classes > 0 ? per * classes : null;
}

/** Per-class F1 of a classification run: label -> F1, from `details.perClass`. */
function perClassF1(r: RunRecord): Map<string, number> {
  const out = new Map<string, number>();
  const pc = r.details?.perClass;
  if (!Array.isArray(pc)) return out;
  for (const c of pc) {
    if (c && typeof c === "object" && typeof (c as Record<string, unknown>).f1 === "number") {
      out.set(String((c as Record<string, unknown>).label), (c as Record<string, number>).f1);
    }
  }
  return out;
}

/**
 * Trivial baselines of a run on its primary metric: name -> value (recorded ones, and the majority
 * class of a classification run on accuracy or macro-F1).
 */
function trivialValues(r: RunRecord): Map<string, number> {
  const out = new Map<string, number>();
  const primary = recordPrimary(r).name;
  for (const b of Array.isArray(r.trivial) ? r.trivial : []) {
    const v = b?.metrics?.[primary];
    if (typeof v === "number") out.set(b.name, v);
  }
  const t = r.status === "success" ? trivialScores(r) : null;
  if (t && primary === "accuracy") out.set("majority", t.majorityAccuracy);
  if (t && primary === "macroF1") out.set("majority", t.majorityMacroF1);
  return out;
}

/** Tokenizer coverage columns of one split: column stem and field. */
const COVERAGE_FIELDS = [
  ["unknown_share", "unknownShare"],
  ["byte_fallback_share", "byteFallbackShare"],
  ["tokens_per_word", "tokensPerWord"],
  ["truncated_share", "truncatedShare"],
] as const;

/**
 * The CSV text of `records`: header, then one row per record. A metric whose name clashes with a
 * fixed column is prefixed `metric_`. Classification runs add one `f1[LABEL]` column per class
 * (union over records, sorted); trivial baselines and tokenizer coverage add theirs (module doc).
 */
export function recordsToCsv(records: RunRecord[]): string {
  const fixed = new Set([...COLUMNS, ...TAIL].map(([c]) => c));
  const metrics = [...new Set(records.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  const f1s = records.map(perClassF1);
  const labels = [...new Set(f1s.flatMap((m) => [...m.keys()]))].sort();
  const trivial = records.map(trivialValues);
  const baselines = [...new Set(trivial.flatMap((m) => [...m.keys()]))].sort();
  const splits = [...new Set(records.flatMap((r) => Object.keys(r.tokenizerCoverage ?? {})))].sort();
  const header = [
    ...COLUMNS.map(([c]) => c),
    ...metrics.map((m) => (fixed.has(m) ? `metric_${m}` : m)),
    ...labels.map((l) => `f1[${l}]`),
    ...baselines.map((b) => `trivial[${b}]`),
    ...splits.flatMap((sp) => COVERAGE_FIELDS.map(([c]) => `${c}[${sp}]`)),
    ...TAIL.map(([c]) => c),
  ];
  const rows = records.map((r, i) => [
    ...COLUMNS.map(([, get]) => get(r)),
    ...metrics.map((m) => r.metrics?.[m]),
    ...labels.map((l) => f1s[i].get(l)),
    ...baselines.map((b) => trivial[i].get(b)),
    ...splits.flatMap((sp) => COVERAGE_FIELDS.map(([, f]) => r.tokenizerCoverage?.[sp]?.[f])),
    ...TAIL.map(([, get]) => get(r)),
  ]);
  return [header, ...rows].map((row) => row.map(csvField).join(",") + "\r\n").join("");
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values } = parseCli(Deno.args, EXPORT_SPEC);
    if (values.help) {
      return console.log(helpText("deno task export-csv --results DIR [--out FILE]", EXPORT_SPEC));
    }
    if (!values.results) throw new UsageError("--results DIR is required (a folder of run records)");
    const records = await readRecords(values.results as string).catch((err) => {
      throw new InputError((err as Error).message);
    });
    startWork();
    const csv = recordsToCsv(records);
    if (values.out) {
      await writeFileAtomic(values.out as string, csv);
      console.error(`${records.length} rows -> ${values.out}`);
    } else await Deno.stdout.write(new TextEncoder().encode(csv));
  });
}
