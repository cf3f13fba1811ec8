import assert from "node:assert/strict";
import { loadModel } from "../../models/load.ts";
import { initBackend } from "../../models/backend.ts";
import { STORIES_MODEL, STORIES_TOKENIZER } from "../../models/fixtures.ts";
import { rollingTokenWindows } from "../metrics/lm.ts";
import { MAX_SCORING_WINDOW, scoreWindows, scoringWindow } from "./lm_score.ts";

await initBackend("wasm");

Deno.test("scoring windows: the model's context, capped for real-size contexts; batching changes no score", async () => {
  const { model, tokenizer } = await loadModel(STORIES_MODEL, STORIES_TOKENIZER);
  try {
    assert.equal(scoringWindow(model), Math.min(model.config.maxSeqLen, MAX_SCORING_WINDOW));
    const longContext = { config: { ...model.config, maxSeqLen: 40960 } } as typeof model;
    assert.equal(scoringWindow(longContext), 512);
    const ids = tokenizer.encode("Once upon a time there was a cat. ".repeat(40));
    const windows = rollingTokenWindows(ids, ids[0], 64, 1);
    assert.ok(windows.length > 3);
    const one = await scoreWindows(model, windows, 1);
    const eight = await scoreWindows(model, windows, 8);
    assert.equal(eight.tokens, ids.length);
    assert.equal(one.tokens, eight.tokens);
    assert.ok(Math.abs(one.nll - eight.nll) <= 1e-4 * one.nll, `${one.nll} vs ${eight.nll}`);
  } finally {
    model.dispose();
  }
});
