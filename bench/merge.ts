/**
 * `deno task merge --out DIR IN1 IN2 ...`: combine the record folders of several sweep shards (or
 * machines) into one. Records already in `--out` take part too, so merging again is idempotent.
 *
 * For a run id found in several folders: a success beats a failure; between two of equal status
 * the newer (`env.startTime`) wins. Two successes whose metrics differ are reported as conflicts
 * (the newer is kept) with their cause: the same config gives the same metrics on one machine and
 * backend, so a conflict comes from different environments (expected) or a nondeterminism. Adapters saved
 * under `IN/adapters/` are not copied.
 * @module
 */
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { canonicalJson, readRecords, type RunRecord, writeRecord } from "./record.ts";

/** Flags of `merge`. */
export const MERGE_SPEC = {
  out: { type: "string", help: "folder to merge into (created if missing; its records take part)" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Records of one folder. */
export interface Source {
  dir: string;
  records: RunRecord[];
}

/** Two successful records of one run with different metrics. */
export interface Conflict {
  runId: string;
  kept: string;
  dropped: string;
  /** Why the metrics may differ: the environments that differ, or a same-machine nondeterminism. */
  cause: string;
}

/**
 * What differs between the environments of two records of one run. Float results are reproducible
 * on one machine and backend only: OpenBLAS picks its kernels per CPU, so another CPU model, BLAS
 * core or thread count, or backend changes summation order (see baselines/README.md).
 */
export function conflictCause(a: RunRecord, b: RunRecord): string {
  const parts: string[] = [];
  const differs = (what: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x ?? null) !== JSON.stringify(y ?? null)) {
      parts.push(`${what} ${x ?? "?"} vs ${y ?? "?"}`);
    }
  };
  differs("backend", a.env?.backend, b.env?.backend);
  differs("CPU", a.env?.cpu, b.env?.cpu);
  differs("BLAS core", a.env?.blas?.core, b.env?.blas?.core);
  differs("BLAS threads", a.env?.blas?.threads, b.env?.blas?.threads);
  if (parts.length > 0) {
    return `different environments (${parts.join("; ")}): float differences are expected; ` +
      "compare with deno task check's tolerances";
  }
  return "same environment: a nondeterminism worth a look (rerun with deno task bench --repeat-check)";
}

/** What a merge keeps: per run id, the chosen record and the folder it came from. */
export interface MergeResult {
  chosen: Map<string, { record: RunRecord; dir: string }>;
  conflicts: Conflict[];
}

/** True when `a` should replace `b` (success first, then newer start time). */
function better(a: RunRecord, b: RunRecord): boolean {
  if (a.status !== b.status) return a.status === "success";
  return (a.env?.startTime ?? "") > (b.env?.startTime ?? "");
}

/** Merge sources in order (see the module doc for the rules). */
export function mergeRecords(sources: Source[]): MergeResult {
  const chosen = new Map<string, { record: RunRecord; dir: string }>();
  const conflicts: Conflict[] = [];
  for (const { dir, records } of sources) {
    for (const record of records) {
      const prev = chosen.get(record.runId);
      if (!prev) {
        chosen.set(record.runId, { record, dir });
        continue;
      }
      const take = better(record, prev.record);
      if (
        record.status === "success" && prev.record.status === "success" &&
        canonicalJson(record.metrics) !== canonicalJson(prev.record.metrics)
      ) {
        conflicts.push({
          runId: record.runId,
          kept: take ? dir : prev.dir,
          dropped: take ? prev.dir : dir,
          cause: conflictCause(record, prev.record),
        });
      }
      if (take) chosen.set(record.runId, { record, dir });
    }
  }
  return { chosen, conflicts };
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values, positionals } = parseCli(Deno.args, MERGE_SPEC, true);
    if (values.help) return console.log(helpText("deno task merge --out DIR IN1 IN2 ...", MERGE_SPEC));
    if (!values.out) throw new UsageError("--out DIR is required (the merged folder)");
    if (positionals.length === 0) throw new UsageError("give one or more record folders to merge");
    const out = values.out as string;
    const sources: Source[] = [];
    const outExists = await Deno.stat(out).then(() => true, () => false);
    for (const dir of outExists ? [out, ...positionals] : positionals) {
      try {
        sources.push({ dir, records: await readRecords(dir) });
      } catch (err) {
        throw new InputError((err as Error).message);
      }
    }
    startWork();
    const { chosen, conflicts } = mergeRecords(sources);
    let written = 0;
    for (const { record, dir } of chosen.values()) {
      if (dir === out) continue; // already there
      await writeRecord(out, record);
      written++;
    }
    for (const c of conflicts) {
      console.error(
        `conflict: ${c.runId}: successful runs with different metrics in ${c.kept} and ${c.dropped}; ` +
          `kept ${c.kept} (newer); ${c.cause}`,
      );
    }
    const ok = [...chosen.values()].filter((c) => c.record.status === "success").length;
    console.error(
      `merged ${chosen.size} runs (${ok} success, ${
        chosen.size - ok
      } failed) from ${positionals.length} folder(s) ` +
        `into ${out}: ${written} written, ${conflicts.length} conflict(s)`,
    );
  });
}
