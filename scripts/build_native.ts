/**
 * `deno task build-native`: compile the native backend's fused kernels
 * (`models/native/kernels.c`) into `models/native/libpeft_kernels.so` with the system C compiler.
 * Optional: without the library the native backend runs those ops as wasm kernels.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { helpText, type OptionSpec, parseCli, runMain } from "../models/util/args.ts";
import { KERNELS_LIBRARY, KERNELS_SOURCE, kernelsSourceHash } from "../models/native_kernels.ts";

const SPEC = {
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/**
 * -O3 -ffast-math lets gcc vectorize expf through glibc's libmvec; the kernels never rely on
 * infinities or NaNs, which -ffast-math assumes absent. No -march=native: the library must run on
 * any x86-64 or arm64 machine the checkout is copied to.
 */
const COMPILE = ["-c", "-O3", "-ffast-math", "-fPIC", "-std=c99", "-Wall", "-Werror"];
/**
 * Linked in a second step without -ffast-math: gcc < 13 links crtfastmath.o into a -ffast-math
 * shared library, whose constructor turns on flush-to-zero for the whole process when the library
 * loads (subnormal floats everywhere in Deno would read as 0).
 */
const LINK = ["-shared"];

async function cc(args: string[]): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("cc", { args, stderr: "piped" }).output();
  } catch (err) {
    throw new Error(
      `no C compiler (${(err as Error).message.split("\n")[0]}); install one with \`apt-get install gcc\``,
    );
  }
  if (!result.success) {
    const detail = new TextDecoder().decode(result.stderr).trim().split("\n")[0];
    throw new Error(`cc ${args.join(" ")} failed: ${detail}`);
  }
}

await runMain(async () => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("deno task build-native", SPEC));
  const out = fromFileUrl(KERNELS_LIBRARY);
  const source = fromFileUrl(KERNELS_SOURCE);
  const hash = `-DPEFT_KERNELS_SOURCE_HASH=${kernelsSourceHash(await Deno.readTextFile(source))}u`;
  const tmp = `${out}.${Deno.pid}.tmp`;
  const object = `${tmp}.o`;
  try {
    await cc([...COMPILE, hash, "-o", object, source]);
    await cc([...LINK, "-o", tmp, object, "-lm"]);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    await Deno.remove(object).catch(() => {});
  }
  await Deno.rename(tmp, out); // atomic: a running process never sees a half-written library
  console.log(`built ${out}`);
});
