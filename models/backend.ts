/**
 * Compute backend selection: `auto | native | wasm | webgpu | cpu | tensorflow`.
 *
 * - `native`: wasm with matmuls in OpenBLAS through Deno FFI (`native.ts`), when the library loads,
 *   and fused C kernels (`native_kernels.ts`) when `deno task build-native` has built them.
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` (SIMD build), the CPU default without OpenBLAS.
 * - `webgpu`: Deno's native WebGPU through `@tensorflow/tfjs-backend-webgpu`.
 * - `cpu`: the pure-JS reference backend.
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, only when the user has
 *   installed one into this folder's `node_modules` (their installers download libtensorflow).
 * - `auto`: tensorflow if installed, else webgpu on a real (non-fallback) GPU, else native when
 *   OpenBLAS loads (with a one-line notice when it does not), else wasm.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
// tfjs-core's package entry registers no gradients; training needs them all (generated from tfjs-core
// by scripts/vendor_tfjs_gradients.ts, so the @tensorflow/tfjs umbrella and its dependencies stay out).
import "./vendor/tfjs_gradients.js";
import * as tfWasm from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { nativeUnavailableReason, openBlas, openBlasThreads, registerNativeBackend } from "./native.ts";
import { nativeKernelsUnavailableReason, openNativeKernels } from "./native_kernels.ts";
import { registerWasmKernels } from "./wasm_kernels.ts";

// Before the native backend copies wasm's kernels, so it gets these too.
registerWasmKernels();

/** Backend names accepted by `--backend`. */
export const BACKEND_NAMES = ["auto", "native", "wasm", "webgpu", "cpu", "tensorflow"] as const;
/** A backend name accepted by `--backend`. */
export type BackendName = typeof BACKEND_NAMES[number];

/** What {@link initBackend} chose, for printing and for run records. */
export interface BackendInfo {
  /** The tfjs backend now active (`wasm`, `webgpu`, `cpu`, `tensorflow`). */
  name: string;
  /** What was asked for. */
  requested: BackendName;
  /** A human description: adapter name, thread count, package. */
  detail: string;
}

const TF_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

function findTfNode(): string | null {
  for (const pkg of TF_NODE_PACKAGES) {
    if (existsSync(join(Deno.cwd(), "node_modules", pkg, "package.json"))) return pkg;
  }
  return null;
}

/** The WebGPU adapter Deno finds, or null (no WebGPU, no Vulkan driver). */
export async function webgpuAdapter(): Promise<GPUAdapter | null> {
  // Mesa's Vulkan loader complains on stderr when XDG_RUNTIME_DIR is unset (headless machines).
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("TMPDIR") ?? "/tmp");
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    return null;
  }
}

function isFallback(adapter: GPUAdapter): boolean {
  const info =
    (adapter as GPUAdapter & { info?: { isFallbackAdapter?: boolean; description?: string } }).info;
  return Boolean(info?.isFallbackAdapter) || /llvmpipe|swiftshader|lavapipe/i.test(info?.description ?? "");
}

function adapterName(adapter: GPUAdapter): string {
  const info = (adapter as GPUAdapter & { info?: { description?: string; vendor?: string } }).info;
  return info?.description || info?.vendor || "unknown adapter";
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend '${name}' failed to initialise; try --backend wasm or --backend cpu`);
  await tf.ready();
  // PROD silences tfjs's "running in Node.js" banner (Deno looks like Node to it).
  tf.env().set("PROD", true);
}

/**
 * Select and initialise a backend. Throws a one-line error naming the fix when the requested
 * backend is unavailable.
 */
export async function initBackend(requested: BackendName = "auto"): Promise<BackendInfo> {
  if (!BACKEND_NAMES.includes(requested)) {
    throw new Error(`unknown backend '${requested}'; use one of ${BACKEND_NAMES.join(", ")}`);
  }
  if (requested === "tensorflow" || requested === "auto") {
    const pkg = findTfNode();
    if (pkg) {
      createRequire(join(Deno.cwd(), "package.json"))(pkg);
      await activate("tensorflow");
      return { name: "tensorflow", requested, detail: pkg };
    }
    if (requested === "tensorflow") {
      throw new Error(
        "backend 'tensorflow' needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu: run " +
          "`npm install @tensorflow/tfjs-node` in this folder (its installer downloads libtensorflow), " +
          "or use --backend wasm",
      );
    }
  }
  if (requested === "webgpu" || requested === "auto") {
    const adapter = await webgpuAdapter();
    if (adapter && (requested === "webgpu" || !isFallback(adapter))) {
      await import("@tensorflow/tfjs-backend-webgpu");
      await activate("webgpu");
      const kind = isFallback(adapter) ? "software fallback adapter" : "GPU";
      return { name: "webgpu", requested, detail: `${adapterName(adapter)} (${kind})` };
    }
    if (requested === "webgpu") {
      throw new Error(
        "backend 'webgpu' found no WebGPU adapter; install a Vulkan driver (e.g. `apt-get install " +
          "mesa-vulkan-drivers`) or use --backend wasm",
      );
    }
  }
  if (requested === "native" || requested === "auto") {
    if (registerNativeBackend()) {
      await activate("wasm"); // native shares the wasm backend's instance
      await activate("native");
      const threads = openBlasThreads();
      // Runs with and without the fused kernels differ in the last float bits, so records say which.
      const fused = openNativeKernels() ? " + fused kernels" : "";
      if (!fused && !noticedUnfused) console.error(`notice: ${nativeKernelsUnavailableReason()}`);
      noticedUnfused = true;
      return {
        name: "native",
        requested,
        detail: `wasm + OpenBLAS sgemm (${openBlas()!.path}${threads ? `, ${threads} threads` : ""})${fused}`,
      };
    }
    if (requested === "native") {
      throw new Error(`backend 'native': ${nativeUnavailableReason()}, or use --backend wasm`);
    }
    console.error(`notice: ${nativeUnavailableReason()}; using wasm`);
  }
  if (requested === "cpu") {
    await activate("cpu");
    return { name: "cpu", requested, detail: "pure-JS reference" };
  }
  await activate("wasm");
  return { name: "wasm", requested, detail: `SIMD, ${tfWasm.getThreadsCount()} thread(s)` };
}

let noticedUnfused = false;

/** One line for command output: `backend: wasm (SIMD, 1 thread(s))`. */
export function describeBackend(info: BackendInfo): string {
  return `backend: ${info.name} (${info.detail})`;
}
