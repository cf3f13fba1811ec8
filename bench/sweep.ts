/**
 * `deno task sweep FILE [--out DIR] [--jobs N] [--shard i/n] [--set FLAG=VALUE] [--dry-run]`: run
 * a sweep file's plan (see `sweep_plan.ts` for the file format).
 *
 * - Resume: runs whose record in `--out` exists with status success are skipped; failed ones rerun.
 * - Failures are recorded (status failed) and the sweep goes on; the exit code is 1 when any run
 *   of this invocation failed, 0 otherwise.
 * - `--jobs N` runs N worker processes (`bench/worker.ts`, each with its own backend and
 *   `OPENBLAS_NUM_THREADS = cores / N`); `--jobs 1` runs in this process.
 * - `--shard i/n` runs plan positions p with p mod n == i - 1 (see `shardRuns`); `deno task merge`
 *   combines the shards' folders. Cluster recipes: `bench/cluster/README.md`.
 * - `--set FLAG=VALUE` overrides a fixed option (not a factor), e.g. `--set model=tests/fixtures/stories260K/stories260K.bin`.
 *
 * The whole plan is validated before anything runs (every entry through buildRunConfigs; the model
 * is loaded, each distinct method configuration of this shard applied once and each distinct
 * dataset loaded and its task built once; `--out` must be a folder): errors exit 2.
 * @module
 */
import {
  helpText,
  InputError,
  numberFlag,
  type OptionSpec,
  parseCli,
  runMain,
  UsageError,
} from "../models/util/args.ts";
import { type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { checkOutDir, checkRunConfig } from "./config.ts";
import { canonicalJson } from "./record.ts";
import { formatDuration, Progress } from "./progress.ts";
import {
  expandPlan,
  parseOverrides,
  parseShard,
  parseSweep,
  type PlannedRun,
  shardRuns,
} from "./sweep_plan.ts";
import { pendingRuns, runInProcess, type RunOutcome, runWithWorkers } from "./sweep_runner.ts";
import { datasetSpec } from "./run.ts";

/** Flags of `sweep`. */
export const SWEEP_SPEC = {
  out: { type: "string", default: "results", help: "folder for run records (resume reads it)" },
  jobs: { type: "string", default: "1", help: "worker processes (1: run in this process)" },
  shard: {
    type: "string",
    help: "run only slice i of n (1-based), e.g. 2/8: positions p with p mod n == i-1",
  },
  set: {
    type: "string",
    multiple: true,
    help: "override a fixed option FLAG=VALUE (repeatable; factor levels still win)",
  },
  "dry-run": { type: "boolean", default: false, help: "print the plan size and first entries, run nothing" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

const USAGE = "deno task sweep FILE [--out DIR] [--jobs N] [--shard i/n] [--set FLAG=VALUE] [--dry-run]";

async function readSweepFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new InputError(`sweep file not found: ${path} (check the path)`);
    }
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
}

function describe(run: PlannedRun): string {
  return Object.entries(run.levels).map(([k, v]) => `${k}=${v}`).join(" ");
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values, positionals } = parseCli(Deno.args, SWEEP_SPEC, true);
    if (values.help) return console.log(helpText(USAGE, SWEEP_SPEC));
    if (positionals.length !== 1) throw new UsageError(`give exactly one sweep file (usage: ${USAGE})`);
    const file = positionals[0];
    const jobs = numberFlag("jobs", values.jobs as string, (n) => Number.isInteger(n) && n >= 1);
    const spec = parseSweep(await readSweepFile(file), file);
    const plan = await expandPlan(
      spec,
      parseOverrides((values.set as unknown as string[] | undefined) ?? []),
    );
    for (const n of plan.notices) console.error(`notice: ${n}`);
    const shard = values.shard ? parseShard(values.shard as string) : null;
    const runs = shard ? shardRuns(plan.runs, shard.index, shard.count) : plan.runs;
    const out = values.out as string;
    checkOutDir(out);
    console.error(
      `plan: ${plan.runs.length} runs (product ${plan.productSize}, ${plan.excluded} excluded, ` +
        `${plan.collapsed} collapsed)` +
        (shard ? `; shard ${shard.index}/${shard.count}: ${runs.length} runs` : ""),
    );
    if (values["dry-run"]) {
      for (const r of runs.slice(0, 10)) console.log(`#${r.index} ${r.runId}  ${describe(r)}`);
      if (runs.length > 10) console.log(`... and ${runs.length - 10} more`);
      return;
    }

    const backend = await initBackend(runs[0]?.config.backend as BackendName ?? "auto");
    console.error(describeBackend(backend));
    // Each distinct (model, method, options) of this shard is applied once to the real model, and
    // each distinct dataset request loaded once and its task built on the model.
    const checked = new Set<string>();
    for (const r of runs) {
      const c = r.config;
      const model = [c.model, c.tokenizer ?? null, c.maxLength];
      const methodKey = canonicalJson(["method", ...model, c.method, c.methodOptions]);
      const dataKey = canonicalJson(["data", ...model, c.task, datasetSpec(c)]);
      const parts = { method: !checked.has(methodKey), data: !checked.has(dataKey) };
      if (!parts.method && !parts.data) continue;
      checked.add(methodKey).add(dataKey);
      await checkRunConfig(c, parts).catch((err) => {
        throw new InputError(`plan run #${r.index} (${describe(r)}): ${(err as Error).message}`);
      });
    }
    const { pending, finished } = await pendingRuns(runs, out);
    console.error(
      `resume: ${finished.length} already recorded as successful in ${out}, ${pending.length} to run`,
    );
    startWork();
    const progress = new Progress(pending.length, "sweep");
    let ok = 0;
    let failed = 0;
    const tty = Deno.stderr.isTerminal();
    const onDone = (o: RunOutcome) => {
      if (o.status === "success") ok++;
      else failed++;
      const what = o.status === "success" ? "ok" : `FAILED: ${o.error}`;
      console.error(
        `${tty ? "\r\x1b[2K" : ""}${o.run.name} (${o.run.runId}) ${what} [${o.seconds.toFixed(1)}s]`,
      );
      progress.tick(1, `ok ${ok} failed ${failed}`);
    };
    if (jobs === 1) await runInProcess(pending, out, backend, onDone);
    else await runWithWorkers(pending, out, jobs, onDone);
    console.error(
      `sweep done in ${formatDuration(progress.elapsed)}: ${ok} ok, ${failed} failed, ` +
        `${finished.length} skipped (already done); records in ${out}`,
    );
    if (failed > 0) Deno.exit(1);
  });
}
