/**
 * `deno task build-native`: compile the native backend's fused kernels
 * (`models/native/kernels.c`) into `models/native/libpeft_kernels.so` with the system C compiler.
 * Optional: without the library the native backend runs those ops as wasm kernels.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { helpText, type OptionSpec, parseCli, runMain } from "../bench/args.ts";
import { KERNELS_LIBRARY } from "../models/native_kernels.ts";

const SPEC = {
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/**
 * -O3 -ffast-math lets gcc vectorize expf through glibc's libmvec; the kernels never rely on
 * infinities or NaNs, which -ffast-math assumes absent. No -march=native: the library must run on
 * any x86-64 or arm64 machine the checkout is copied to.
 */
const FLAGS = ["-O3", "-ffast-math", "-fPIC", "-shared", "-std=c99", "-Wall", "-Werror"];

await runMain(async () => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("deno task build-native", SPEC));
  const out = fromFileUrl(KERNELS_LIBRARY);
  const source = fromFileUrl(new URL("./kernels.c", KERNELS_LIBRARY));
  const tmp = `${out}.${Deno.pid}.tmp`;
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("cc", { args: [...FLAGS, "-o", tmp, source, "-lm"], stderr: "piped" })
      .output();
  } catch (err) {
    throw new Error(
      `no C compiler (${(err as Error).message.split("\n")[0]}); install one with \`apt-get install gcc\``,
    );
  }
  if (!result.success) {
    await Deno.remove(tmp).catch(() => {});
    const detail = new TextDecoder().decode(result.stderr).trim().split("\n")[0];
    throw new Error(`cc failed on ${source}: ${detail}`);
  }
  await Deno.rename(tmp, out); // atomic: a running process never sees a half-written library
  console.log(`built ${out}`);
});
