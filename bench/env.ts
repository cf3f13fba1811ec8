/**
 * The context a run record keeps: versions, CPU model, OpenBLAS core and threads, git commit and
 * dirty flag, a calibration kernel.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { cpus, hostname } from "node:os";
import type { BackendInfo } from "../models/backend.ts";
import type { RunRecord } from "./record.ts";
import { median } from "../models/util/numeric.ts";

let gitCache: { commit: string | null; dirty: boolean | null } | undefined;

/** Current git commit and whether the work tree has changes (null outside a repository). */
export async function gitState(): Promise<{ commit: string | null; dirty: boolean | null }> {
  if (gitCache) return gitCache;
  const run = async (args: string[]) => {
    try {
      const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
    } catch {
      return null; // git missing or not permitted
    }
  };
  const commit = await run(["rev-parse", "HEAD"]);
  const status = commit ? await run(["status", "--porcelain", "--untracked-files=no"]) : null;
  gitCache = { commit, dirty: status === null ? null : status.length > 0 };
  return gitCache;
}

/** The CPU model from /proc/cpuinfo's "model name" line (null when the text has none). */
export function cpuModelFromCpuinfo(text: string): string | null {
  const m = /^model name\s*:\s*(.+)$/m.exec(text);
  return m ? m[1].trim() || null : null;
}

/** Whether a permission is granted, without ever prompting. */
function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/**
 * The CPU model ("AMD EPYC 7B13"): from the OS (`node:os` cpus, which needs `--allow-sys`), else
 * /proc/cpuinfo (Deno reads /proc only under `--allow-all`); null when neither is allowed.
 */
export function cpuModel(): string | null {
  if (granted({ name: "sys", kind: "cpus" })) {
    try {
      const model = cpus()[0]?.model?.trim();
      if (model && model !== "unknown") return model;
    } catch { /* not available on this platform */ }
  }
  if (granted({ name: "read", path: "/proc/cpuinfo" })) {
    try {
      return cpuModelFromCpuinfo(Deno.readTextFileSync("/proc/cpuinfo"));
    } catch { /* not Linux, or not permitted */ }
  }
  return null;
}

/** CPU model and logical core count, as records store it: `AMD EPYC 7B13 x2`. */
export function cpuName(): string {
  return `${cpuModel() ?? "unknown CPU"} x${navigator.hardwareConcurrency}`;
}

/** The CPU model of a record's `env.cpu` (its core count dropped); null when it was unknown. */
export function cpuModelOf(cpu: string): string | null {
  const model = cpu.replace(/ x\d+$/, "");
  return model === "unknown CPU" ? null : model;
}

/** OpenBLAS's core and threads on the native backend (null elsewhere: no BLAS in the loop). */
export async function blasInfo(backend: BackendInfo): Promise<NonNullable<RunRecord["env"]["blas"]> | null> {
  if (backend.name !== "native") return null;
  const native = await import("../models/native.ts");
  return { core: native.openBlasCoreName(), threads: native.openBlasThreads() };
}

/** The environment block of a run record. */
export async function environment(backend: BackendInfo): Promise<RunRecord["env"]> {
  const git = await gitState();
  const blas = await blasInfo(backend);
  return {
    deno: Deno.version.deno,
    tfjs: tf.version_core,
    backend: backend.name,
    backendDetail: backend.detail,
    cpu: cpuName(),
    ...(blas ? { blas } : {}),
    gitCommit: git.commit,
    gitDirty: git.dirty,
    startTime: new Date().toISOString(),
    hostname: hostname(),
  };
}

/** Median milliseconds of an n x n x n float32 matmul on the active backend (after `warmup` runs). */
export async function matMulMs(n: number, repeats: number, warmup = 2): Promise<number> {
  const a = tf.randomUniform([n, n], -1, 1, "float32", 1);
  const b = tf.randomUniform([n, n], -1, 1, "float32", 2);
  const times: number[] = [];
  for (let i = 0; i < repeats + warmup; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  tf.dispose([a, b]);
  return median(times);
}

/**
 * Calibration kernel: median ms of a 512^3 matmul on the active backend, timed in the same
 * process as the run, so that latencies can be compared across machines and noisy moments
 * (regression checks divide latencies by it). 512^3 (a few ms) is long enough to be steady under
 * load and short next to a run.
 */
export function calibrationMs(repeats = 9): Promise<number> {
  return matMulMs(512, repeats);
}

/** p50/p95/mean of latencies (nearest-rank percentiles). */
export function latencyStats(ms: number[]): { p50: number; p95: number; mean: number; n: number } {
  if (ms.length === 0) return { p50: NaN, p95: NaN, mean: NaN, n: 0 };
  const s = [...ms].sort((x, y) => x - y);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { p50: rank(0.5), p95: rank(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length };
}
