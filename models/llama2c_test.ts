import assert from "node:assert/strict";
import { inspectLlama2c, parseLlama2c, readLlama2c } from "./llama2c.ts";
import { STORIES_MODEL } from "./fixtures.ts";

/** The fixture's bytes with header field `index` (0 dim ... 6 seq_len) set to `value`. */
async function withHeader(index: number, value: number): Promise<Uint8Array> {
  const bytes = await Deno.readFile(STORIES_MODEL);
  new DataView(bytes.buffer).setInt32(4 * index, value, true);
  return bytes;
}

Deno.test("llama2c: inspecting the header and size gives the config a full read gives", async () => {
  const full = await readLlama2c(STORIES_MODEL);
  assert.deepEqual(await inspectLlama2c(STORIES_MODEL), full.config);
  await assert.rejects(inspectLlama2c("/nonexistent/m.bin"), /model file not found: \/nonexistent\/m\.bin/);
});

Deno.test("llama2c: a header claiming a huge model fails on the header, before allocating", async () => {
  assert.throws(
    () => parseLlama2c(new Uint8Array(0), "x.bin"),
    /x\.bin: truncated llama2\.c checkpoint \(0 bytes/,
  );
  const huge = await withHeader(2, 100_000_000);
  assert.throws(
    () => parseLlama2c(huge, "x.bin"),
    /^Error: x\.bin: n_layers is 100000000, above the limit of 4096/,
  );
  // Within the limits, but far more than the file holds: the size check, still before allocating.
  const big = await withHeader(2, 4000);
  assert.throws(
    () => parseLlama2c(big, "x.bin"),
    /x\.bin: truncated llama2\.c checkpoint: \d+ bytes, the header's shapes need/,
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/m.bin`, huge);
    await assert.rejects(inspectLlama2c(`${dir}/m.bin`), /m\.bin: n_layers is 100000000, above the limit/);
    await Deno.writeFile(`${dir}/m.bin`, (await Deno.readFile(STORIES_MODEL)).subarray(0, 1000));
    await assert.rejects(
      inspectLlama2c(`${dir}/m.bin`),
      /m\.bin: truncated llama2\.c checkpoint: 1000 bytes/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
