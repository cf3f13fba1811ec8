/**
 * executeRun writes the task's trivial baselines and tokenizer coverage into the run record
 * (record.trivial, record.tokenizerCoverage), on the stories260K fixture and its llama2.c tokenizer.
 */
import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { initBackend } from "../models/backend.ts";
import { executeRun } from "./run.ts";
import { buildRunConfigs } from "./config.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { parseCli } from "../models/util/args.ts";

const backend = await initBackend("wasm");

Deno.test("bench: an LM run records the unigram baseline and each split's tokenizer coverage", async () => {
  const { values } = parseCli(
    [
      "--model",
      STORIES,
      "--dataset",
      "wordnet-glosses",
      "--train-size",
      "16",
      "--steps",
      "2",
      "--max-eval",
      "4",
    ],
    BENCH_SPEC,
  );
  const r = await executeRun(buildRunConfigs(values as Record<string, unknown>)[0], { backend, quiet: true });
  assert.equal(r.status, "success", r.error);
  const [uni] = r.trivial!;
  assert.equal(uni.name, "unigram");
  assert.deepEqual(Object.keys(uni.metrics), Object.keys(r.metrics));
  // The same scored tokens: the unigram's NLL per token over its perplexity's log, and the byte
  // measures follow from them with the evaluation's own token and byte counts.
  const { tokens, bytes } = r.details as { tokens: number; bytes: number };
  assert.ok(Math.abs(uni.metrics.bitsPerByte - uni.metrics.meanNll * tokens / bytes / Math.LN2) < 1e-9);
  assert.ok(uni.metrics.perplexity > 1);
  const cov = r.tokenizerCoverage!;
  assert.deepEqual(Object.keys(cov).sort(), ["test", "train"]);
  assert.equal(cov.test.texts, 4);
  assert.equal(cov.test.tokens, tokens, "coverage counts the tokens the evaluation scored");
  assert.equal(cov.test.unknownTokens, 0);
});
