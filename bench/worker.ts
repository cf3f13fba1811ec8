/**
 * A sweep worker process (`deno task sweep --jobs N` starts N of them). It reads one job per line
 * on stdin (`{"config": RunConfig}`), runs it, writes the record atomically into `--out`, and
 * answers one line on stdout: `@@sweep {"runId", "status", "error", "seconds"}` (the marker keeps
 * stray library output apart from replies). It initialises its own backend from the first job's
 * config. When stdin closes (the sweep finished, or its process died) it exits once the run in
 * flight, if any, has written its record (tfjs work does not yield to I/O mid-run). Killing the
 * whole process group (Ctrl-C, Slurm, Kubernetes) stops the workers at once.
 *
 * Permissions (see `WORKER_PERMISSIONS`): read (model, datasets), write (records), env, sys (CPU
 * name, memory), ffi (OpenBLAS and the fused kernels only), run=git (the commit in each record). No
 * network.
 * @module
 */
import { type BackendInfo, type BackendName, initBackend } from "../models/backend.ts";
import { executeRun } from "./run.ts";
import { type RunConfig, writeRecord } from "./record.ts";
import { parseCli, runMain, UsageError } from "../models/util/args.ts";
import { fileURLToPath } from "node:url";
import { OPENBLAS_CANDIDATES } from "../models/native.ts";
import { KERNELS_LIBRARY } from "../models/native_kernels.ts";

/** Prefix of reply lines on the worker's stdout. */
export const REPLY_MARKER = "@@sweep ";

/** A worker's answer to one job. */
export interface WorkerReply {
  runId: string;
  status: "success" | "failed";
  error?: string;
  seconds: number;
}

/** The only native libraries a run may load: OpenBLAS's candidate paths and the fused kernels. */
export const NATIVE_LIBRARIES: readonly string[] = [...OPENBLAS_CANDIDATES, fileURLToPath(KERNELS_LIBRARY)];

/** The permission flags a worker runs with (least privilege: no network, only git may be run). */
export const WORKER_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  `--allow-ffi=${NATIVE_LIBRARIES.join(",")}`,
  "--allow-run=git",
  "--no-prompt",
];

/** Split a byte stream into text lines. */
export function lines(stream: ReadableStream<Uint8Array>): ReadableStream<string> {
  let buffer = "";
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>({
      transform(chunk, controller) {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          controller.enqueue(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
        }
      },
      flush(controller) {
        if (buffer) controller.enqueue(buffer);
      },
    }),
  );
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values } = parseCli(Deno.args, { out: { type: "string", help: "record folder" } });
    if (!values.out) throw new UsageError("--out is required");
    const out = values.out as string;
    startWork();
    let backend: BackendInfo | null = null;
    const encoder = new TextEncoder();
    for await (const line of lines(Deno.stdin.readable)) {
      if (!line.trim()) continue;
      const { config } = JSON.parse(line) as { config: RunConfig };
      backend ??= await initBackend(config.backend as BackendName);
      const t0 = performance.now();
      const record = await executeRun(config, { backend, quiet: true });
      await writeRecord(out, record);
      const reply: WorkerReply = {
        runId: record.runId,
        status: record.status,
        error: record.error,
        seconds: (performance.now() - t0) / 1000,
      };
      await Deno.stdout.write(encoder.encode(REPLY_MARKER + JSON.stringify(reply) + "\n"));
    }
    // stdin closed: the sweep is done with this worker (or gone).
  });
}
