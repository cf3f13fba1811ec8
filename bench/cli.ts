/**
 * `deno task bench`: run one configuration (for one or several seeds) and write a run record per
 * seed. With no flags it runs the default task (wordnet-lex classification) with LoRA on the
 * embedded default model.
 * @module
 */
import { asInputError, helpText, parseCli, runMain } from "../models/util/args.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { buildRunConfigs, checkOutDir } from "./config.ts";
import { executeRun } from "./run.ts";
import { resolveRun } from "./run_resolve.ts";
import { loadRunDataset } from "./run_task.ts";
import { recordPath, type RunRecord, writeRecord } from "./record.ts";
import { METHODS } from "../methods/registry.ts";
import { knownDatasets } from "../datasets/registry.ts";
import { summaryTable } from "./summary.ts";

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values } = parseCli(Deno.args, BENCH_SPEC);
    if (values.help) return console.log(helpText("deno task bench [--method lora --rank 8 ...]", BENCH_SPEC));
    if (values["list-methods"]) {
      for (const m of METHODS.values()) console.log(`${m.name.padEnd(16)} ${m.description}`);
      return;
    }
    if (values["list-datasets"]) {
      for (const d of knownDatasets()) {
        const options = d.options.length > 0 ? ` (--data-opt: ${d.options.join(", ")})` : "";
        console.log(`${d.name.padEnd(18)} ${d.task.padEnd(9)} ${d.describe}${options}`);
      }
      return;
    }
    const configs = buildRunConfigs(values as Record<string, unknown>);
    const out = values.out as string;
    checkOutDir(out);
    // The config's own checks, then the dataset's (files, columns, UTF-8): the seeds differ only
    // in the run seed, so they share it. The first seed's setup (model, task, method) is checked as
    // it runs: its errors exit 2 before anything is written.
    resolveRun(configs[0]);
    const dataset = await loadRunDataset(configs[0]).catch((err) => {
      throw asInputError(err);
    });
    const backend = await initBackend(configs[0].backend as BackendName);
    console.error(describeBackend(backend));
    const records: RunRecord[] = [];
    for (const [i, config] of configs.entries()) {
      const record = await executeRun(config, {
        backend,
        dataset,
        saveAdapterDir: values["save-adapter"] ? `${out}/adapters` : undefined,
        ...(i === 0 ? { validateSetup: { ready: startWork } } : {}),
      });
      const path = await writeRecord(out, record);
      records.push(record);
      if (record.status === "failed") console.error(`run failed: ${record.error} (recorded in ${path})`);
      if (values["repeat-check"]) {
        const again = await executeRun(config, { backend, dataset });
        const same = JSON.stringify(again.metrics) === JSON.stringify(record.metrics) &&
          JSON.stringify(again.perItem) === JSON.stringify(record.perItem);
        console.log(`repeat check (seed ${config.seed}): metrics ${same ? "bit-identical" : "DIFFER"}`);
        if (!same) {
          console.log(JSON.stringify({ first: record.metrics, second: again.metrics }));
          throw new Error("the same config and seed gave different metrics on this backend");
        }
      }
    }
    console.log(summaryTable(records));
    for (const r of records) console.log(`record: ${recordPath(out, r.runId)}`);
    if (records.every((r) => r.status === "failed")) Deno.exit(1);
  });
}
