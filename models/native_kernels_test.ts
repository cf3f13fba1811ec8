import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  KERNELS_SOURCE,
  kernelsSourceHash,
  nativeKernelsUnavailableReason,
  openKernelsAt,
  openNativeKernels,
} from "./native_kernels.ts";

/** Compile kernels.c with the given source hash into `dir`; false when there is no C compiler. */
async function build(dir: string, hash: number): Promise<string | null> {
  const object = `${dir}/k.o`;
  const lib = `${dir}/lib-${hash}.so`;
  try {
    const compile = await new Deno.Command("cc", {
      args: [
        "-c",
        "-O1",
        "-fPIC",
        `-DPEFT_KERNELS_SOURCE_HASH=${hash}u`,
        "-o",
        object,
        fileURLToPath(KERNELS_SOURCE),
      ],
    }).output();
    const link = await new Deno.Command("cc", { args: ["-shared", "-o", lib, object, "-lm"] }).output();
    return compile.success && link.success ? lib : null;
  } catch {
    return null;
  }
}

Deno.test("fused kernels: a library built from another kernels.c is refused with the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const current = await build(dir, kernelsSourceHash());
    if (!current) {
      assert.ok(!Deno.env.get("CI"), "CI installs a C compiler");
      return; // no compiler here: nothing to build
    }
    assert.ok("kernels" in openKernelsAt(current));
    const stale = await build(dir, (kernelsSourceHash() + 1) >>> 0);
    const opened = openKernelsAt(stale!);
    assert.ok("reason" in opened);
    assert.match(opened.reason, /built from another version of kernels\.c; run `deno task build-native`/);
    const missing = openKernelsAt(`${dir}/absent.so`);
    assert.ok("reason" in missing && /fused kernels not built .*deno task build-native/.test(missing.reason));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "fused kernels: opening them fixes glibc's mmap threshold (freed large buffers leave RSS at once)",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    const k = openNativeKernels();
    if (k === null) throw new Error(`native kernels unavailable: ${nativeKernelsUnavailableReason()}`);
    // mallopt returns 1 on success; a glibc-less build would return 0.
    assert.equal(k.peft_malloc_fixed_mmap_threshold(), 1);
  },
});
