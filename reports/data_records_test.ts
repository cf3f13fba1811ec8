import assert from "node:assert/strict";
import { join } from "node:path";
import { buildReport } from "./mod.ts";
import { InputError } from "../models/util/args.ts";
import { writeRecord } from "../bench/record.ts";
import { listTree, testRecord, writeRawJson } from "../bench/record_testing.ts";

Deno.test("report: records are validated when read; a hostile or incomplete one is one InputError naming the file", async () => {
  const root = await Deno.makeTempDir();
  try {
    const results = join(root, "results");
    const out = join(root, "site");
    await writeRecord(results, testRecord("good"));
    const cases: [string, unknown, RegExp][] = [
      ["x.json", testRecord("../../x"), /x\.json: run id "\.\.\/\.\.\/x" is not a safe file name/],
      [
        "run-00001.json",
        testRecord("good-2"),
        /run-00001\.json: run id "good-2" does not match the file name/,
      ],
      ["nocfg.json", { ...testRecord("nocfg"), config: undefined }, /nocfg\.json: config: /],
      [
        "nummetric.json",
        testRecord("nummetric", (r) => {
          (r.metrics as Record<string, unknown>).accuracy = "0.5";
        }),
        /nummetric\.json: metrics\.accuracy: /,
      ],
    ];
    for (const [file, content, re] of cases) {
      const path = await writeRawJson(results, file, content);
      await assert.rejects(
        buildReport(results, out, { resamples: 10, permutations: 10 }),
        (e: Error) =>
          e instanceof InputError && e.message.startsWith(path) && re.test(e.message) &&
          !e.message.includes("\n") && !/Cannot read properties/.test(e.message),
        file,
      );
      await Deno.remove(path);
    }
    assert.deepEqual(await listTree(root), ["results/good.json"], "no report written");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
