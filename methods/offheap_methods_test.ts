import assert from "node:assert/strict";
import { initBackend } from "../models/backend.ts";
import { loadModel } from "../models/load.ts";
import { STORIES_MODEL, STORIES_TOKENIZER } from "../models/fixtures.ts";
import { Rng } from "../models/util/rng.ts";
import { Linear } from "../models/linear.ts";
import { getMethod, parseMethodConfig } from "./registry.ts";
import type { MethodContext } from "./types.ts";

const native = await initBackend("native").then(() => true, () => false);

const ctx = (): MethodContext => ({
  rng: new Rng(3),
  totalSteps: 1,
  makeFrozenLinear: () => {
    throw new Error("not used");
  },
});

Deno.test({
  name: "methods on an off-heap model: prompt tuning starts from the same embedding rows; full refuses",
  ignore: !native,
  fn: async () => {
    const heap = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "never" });
    const off = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "always" });
    try {
      assert.deepEqual(off.model.embeddingRows([0, 7, 511]), heap.model.embeddingRows([0, 7, 511]));
      const prompt = getMethod("prompt-tuning");
      const config = parseMethodConfig(prompt, { virtualTokens: 3 });
      const a = prompt.apply(heap.model, config, ctx());
      const b = prompt.apply(off.model, config, ctx());
      assert.deepEqual(b.trainable[0].dataSync(), a.trainable[0].dataSync());
      a.dispose();
      b.dispose();
      const full = getMethod("full");
      assert.throws(
        () => full.apply(off.model, parseMethodConfig(full, {}), ctx()),
        /stored off the wasm heap.*--method lora/,
      );
      assert.ok(
        ![...off.model.linears.values()].some((l) => l instanceof Linear),
        "off-heap linears are not heap Linears",
      );
    } finally {
      heap.model.dispose();
      off.model.dispose();
    }
  },
});
