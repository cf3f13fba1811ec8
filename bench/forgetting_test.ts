import assert from "node:assert/strict";
import { initBackend } from "../models/backend.ts";
import { loadModel } from "../models/load.ts";
import {
  STORIES_MODEL,
  STORIES_SENTENCE,
  STORIES_SENTENCE_LOSS,
  STORIES_TOKENIZER,
} from "../models/fixtures.ts";
import { parseCli } from "../models/util/args.ts";
import { FORGETTING_TOKENS, forgettingOf, genericNll, genericText } from "./forgetting.ts";
import { executeRun } from "./run.ts";
import { buildRunConfigs } from "./config.ts";
import { BENCH_SPEC } from "./bench_options.ts";

const backend = await initBackend("wasm");

Deno.test("forgetting: the scored NLL is the model's own mean loss (llama2.c's value for the fixture sentence)", async () => {
  const { model, tokenizer } = await loadModel(STORIES_MODEL, STORIES_TOKENIZER);
  try {
    const { nll, tokens } = await genericNll(model, tokenizer, STORIES_SENTENCE);
    assert.equal(tokens, tokenizer.encode(STORIES_SENTENCE).length);
    assert.ok(Math.abs(nll - STORIES_SENTENCE_LOSS) < 5e-5, `${nll} vs ${STORIES_SENTENCE_LOSS}`);
    // Only the text's beginning is scored.
    const long = await genericNll(model, tokenizer, STORIES_SENTENCE.repeat(400));
    assert.equal(long.tokens, FORGETTING_TOKENS);
  } finally {
    model.dispose();
  }
});

Deno.test("forgetting: the text is held-out SOTU prose, WordNet glosses when the run's dataset is SOTU", () => {
  assert.equal(genericText("wordnet-lex").name, "sotu-test");
  assert.equal(genericText("sotu").name, "wordnet-check");
  assert.ok(genericText("wordnet-lex").text.length > 10_000);
  assert.deepEqual(forgettingOf("sotu-test", { nll: 2, tokens: 9 }, { nll: 2.5, tokens: 9 }), {
    text: "sotu-test",
    tokens: 9,
    nllBefore: 2,
    nllAfter: 2.5,
    delta: 0.5,
  });
});

Deno.test("forgetting in run records: 0 for frozen, positive after a high learning rate on unrelated data, rerun-identical", async () => {
  const run = (args: string[]) => {
    const { values } = parseCli(
      ["--model", STORIES_MODEL, "--max-eval", "10", "--train-per-class", "2", ...args],
      BENCH_SPEC,
    );
    return executeRun(buildRunConfigs(values as Record<string, unknown>)[0], { backend, quiet: true });
  };
  const frozen = await run(["--method", "frozen", "--steps", "3"]);
  assert.equal(frozen.status, "success", frozen.error);
  assert.equal(frozen.forgetting!.text, "sotu-test");
  assert.equal(frozen.forgetting!.delta, 0);
  // WordNet lexicographer classes are unrelated to the stories model's text: a hot LoRA run forgets.
  const hot = ["--method", "lora", "--targets", "all-linear", "--steps", "6", "--lr", "0.05"];
  const lora = await run(hot);
  assert.equal(lora.status, "success", lora.error);
  assert.equal(lora.forgetting!.nllBefore, frozen.forgetting!.nllBefore); // same frozen base, same text
  assert.ok(lora.forgetting!.delta > 0, String(lora.forgetting!.delta));
  assert.deepEqual((await run(hot)).forgetting, lora.forgetting);
  // A user's text (the model's own kind of prose) replaces the default.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/story.txt`, STORIES_SENTENCE);
    const own = await run([...hot, "--forgetting-text", `${dir}/story.txt`]);
    assert.equal(own.forgetting!.text, `${dir}/story.txt`);
    assert.ok(Math.abs(own.forgetting!.nllBefore - STORIES_SENTENCE_LOSS) < 5e-5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
