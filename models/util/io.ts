/**
 * File helpers shared by every writer in peft-bench.
 * @module
 */
import { basename, dirname, join } from "node:path";

/**
 * Write a file atomically: the data goes to a temp file in the same folder, which is then renamed
 * over the target, so a reader (or a crash) never sees a half-written file.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Read a file, turning "not found" into a one-line error that names the path and what it was for. */
export async function readFileOrExplain(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(`${what} not found: ${path} (check the path)`);
    throw err;
  }
}
