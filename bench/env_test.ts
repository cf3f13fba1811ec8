import assert from "node:assert/strict";
import { blasInfo, cpuModelFromCpuinfo, cpuModelOf, cpuName } from "./env.ts";
import type { BackendInfo } from "../models/backend.ts";
import { openBlas } from "../models/native.ts";
import { openNativeKernels } from "../models/native_kernels.ts";

const isLinux = Deno.build.os === "linux";
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("cpu model: read from /proc/cpuinfo text; the core count is dropped when comparing", () => {
  const intel =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t: sse\n";
  assert.equal(cpuModelFromCpuinfo(intel), "Intel(R) Xeon(R) CPU @ 2.20GHz");
  assert.equal(cpuModelFromCpuinfo("processor\t: 0\nCPU implementer\t: 0x41\n"), null);
  assert.equal(cpuModelOf("Intel(R) Xeon(R) CPU @ 2.20GHz x2"), "Intel(R) Xeon(R) CPU @ 2.20GHz");
  assert.equal(cpuModelOf("unknown CPU x2"), null);
});

/** /proc/cpuinfo through `cat` (Deno reads /proc only under --allow-all; the test task has --allow-run). */
async function procCpuinfo(): Promise<string> {
  const out = await new Deno.Command("cat", { args: ["/proc/cpuinfo"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "records name the real CPU model under the bench tasks' permissions (--allow-sys, no --allow-all)",
  ignore: !isLinux,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const script = `${dir}/cpu.ts`;
      await Deno.writeTextFile(
        script,
        `import { cpuName } from ${JSON.stringify(new URL("./env.ts", import.meta.url).href)};\n` +
          "console.log(cpuName());\n",
      );
      const run = async (perms: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-prompt", "--config", CONFIG, ...perms, script],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
        return new TextDecoder().decode(out.stdout).trim();
      };
      const text = await run(["--allow-read", "--allow-sys", "--allow-env"]);
      assert.doesNotMatch(text, /^unknown CPU/);
      assert.match(text, / x\d+$/);
      assert.equal(cpuModelOf(text), cpuModelFromCpuinfo(await procCpuinfo()));
      // Without --allow-sys (and without --allow-all) nothing prompts or throws: the model is unknown.
      assert.match(await run(["--allow-read", "--allow-env"]), /^unknown CPU x\d+$/);
      assert.equal(cpuName(), text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "native records carry OpenBLAS's core and thread count; other backends none",
  ignore: !openBlas(),
  fn: async () => {
    assert.equal(await blasInfo({ name: "wasm", requested: "wasm", detail: "" } as BackendInfo), null);
    const info = await blasInfo({ name: "native", requested: "native", detail: "" } as BackendInfo);
    assert.ok(info);
    assert.ok(Number.isInteger(info.threads) && info.threads! >= 1, `threads ${info.threads}`);
    // The core name is read through the fused kernels' helper (no pointer permission needed).
    if (openNativeKernels()) assert.match(info.core ?? "", /^[A-Za-z0-9_]+$/);
  },
});
