/**
 * Executing a sweep plan: skip runs already recorded as successful (resume; a damaged or invalid
 * record is an input error naming the file, exit 2 before any run), then run the rest
 * in this process (`jobs = 1`) or in N worker processes (`bench/worker.ts`), each taking the next
 * run from a shared queue. Every run's record is written atomically as soon as it finishes, so
 * killing the sweep loses at most the runs in flight.
 * @module
 */
import { fileURLToPath } from "node:url";
import type { BackendInfo } from "../models/backend.ts";
import { executeRun } from "./run.ts";
import { readRecordFile, recordPath, writeRecord } from "./record.ts";
import type { PlannedRun } from "./sweep_plan.ts";
import { InputError } from "../models/util/args.ts";
import { lines, REPLY_MARKER, WORKER_PERMISSIONS, type WorkerReply } from "./worker.ts";

/** How one run ended. */
export interface RunOutcome {
  run: PlannedRun;
  status: "success" | "failed";
  error?: string;
  seconds: number;
}

/**
 * True when `out` holds a valid record of `runId` with status success; false when there is none
 * or the run failed (it reruns). A damaged or invalid record file is an InputError naming it
 * (validated like every other reader of records, see `parseRecord`): resume never guesses.
 */
export async function isFinished(out: string, runId: string): Promise<boolean> {
  const path = recordPath(out, runId);
  const record = await readRecordFile(path);
  if (record === null && await Deno.stat(path).then(() => true, () => false)) {
    throw new InputError(
      `${path}: JSON without a run id or schema version where run ${runId}'s record belongs; delete it and rerun`,
    );
  }
  return record?.status === "success";
}

/** Split runs into those still to do and those already finished successfully in `out`. */
export async function pendingRuns(
  runs: PlannedRun[],
  out: string,
): Promise<{ pending: PlannedRun[]; finished: PlannedRun[] }> {
  const pending: PlannedRun[] = [];
  const finished: PlannedRun[] = [];
  for (const run of runs) (await isFinished(out, run.runId) ? finished : pending).push(run);
  return { pending, finished };
}

/** Run every run in this process, one after the other. */
export async function runInProcess(
  runs: PlannedRun[],
  out: string,
  backend: BackendInfo,
  onDone: (o: RunOutcome) => void,
): Promise<void> {
  for (const run of runs) {
    const t0 = performance.now();
    const record = await executeRun(run.config, { backend, quiet: true });
    await writeRecord(out, record);
    onDone({ run, status: record.status, error: record.error, seconds: (performance.now() - t0) / 1000 });
  }
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));
const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));

/** One worker process and its line-based protocol. */
class WorkerProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #replies: ReadableStreamDefaultReader<string>;

  constructor(out: string, threads: number) {
    const env: Record<string, string> = {};
    // N workers with a full-width BLAS each would oversubscribe the cores: split them.
    if (!Deno.env.get("OPENBLAS_NUM_THREADS")) env.OPENBLAS_NUM_THREADS = String(threads);
    // `deno` from PATH, the binary `--allow-run=deno` grants (Deno.execPath() may be another path,
    // e.g. the real binary behind an npm wrapper, which the permission would not cover).
    this.#child = new Deno.Command("deno", {
      // --expose-gc: quantizing hands released frozen tables back at once (models/util/gc.ts).
      args: [
        "run",
        "--config",
        DENO_JSON,
        "--v8-flags=--expose-gc",
        ...WORKER_PERMISSIONS,
        WORKER,
        "--out",
        out,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env,
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#replies = lines(this.#child.stdout).getReader();
  }

  /** Run one config; null when the worker died before answering. */
  async run(run: PlannedRun): Promise<WorkerReply | null> {
    try {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify({ config: run.config }) + "\n"));
    } catch {
      return null;
    }
    for (;;) {
      const { value, done } = await this.#replies.read();
      if (done) return null;
      if (value.startsWith(REPLY_MARKER)) return JSON.parse(value.slice(REPLY_MARKER.length));
    }
  }

  /** Close stdin (the worker exits) and wait; returns the exit code. */
  async close(): Promise<number> {
    await this.#writer.close().catch(() => {});
    // Drain stdout so the process is not blocked writing.
    while (!(await this.#replies.read().catch(() => ({ done: true }))).done) { /* drain */ }
    return (await this.#child.status).code;
  }
}

/**
 * Run the runs in `jobs` worker processes sharing one queue. A worker that dies mid-run (crash,
 * out of memory) has its run reported failed (no record: a rerun retries it) and is replaced;
 * three deaths in a row without a finished run abort the sweep, since workers cannot start.
 */
export async function runWithWorkers(
  runs: PlannedRun[],
  out: string,
  jobs: number,
  onDone: (o: RunOutcome) => void,
): Promise<void> {
  const queue = [...runs];
  const threads = Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / jobs));
  let deathsInRow = 0;
  const lane = async () => {
    let worker = new WorkerProcess(out, threads);
    while (queue.length > 0) {
      const run = queue.shift()!;
      const t0 = performance.now();
      const reply = await worker.run(run);
      if (reply) {
        deathsInRow = 0;
        onDone({ run, status: reply.status, error: reply.error, seconds: reply.seconds });
        continue;
      }
      const code = await worker.close();
      onDone({
        run,
        status: "failed",
        error: `worker process exited (code ${code}) during the run; not recorded, a rerun retries it`,
        seconds: (performance.now() - t0) / 1000,
      });
      if (++deathsInRow >= 3) {
        queue.length = 0;
        throw new Error(`sweep workers keep dying (exit code ${code}); see their errors above`);
      }
      worker = new WorkerProcess(out, threads);
    }
    await worker.close();
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(jobs, runs.length) }, lane));
  const failure = results.find((r) => r.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
}
