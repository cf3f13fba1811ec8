/**
 * Trainable tokens on a model whose embedding table is stored off the wasm heap (native backend):
 * the rows are substituted after the stored gather and in the stored tied head, so loss and the
 * rows' gradient equal those on the same model held on the heap; merge is refused there.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { loadModel } from "../models/load.ts";
import { STORIES_MODEL, STORIES_SENTENCE_IDS, STORIES_TOKENIZER } from "../models/fixtures.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { trainableTokens } from "./trainable_tokens.ts";
import { maxAbsDiff } from "./tiny_test_utils.ts";

const native = await initBackend("native").then(() => true, () => false);

Deno.test({
  name: "trainable-tokens on an off-heap table: same loss and row gradients as on the heap; merge refused",
  ignore: !native,
  fn: async () => {
    const heap = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "never" });
    const off = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "always" });
    try {
      assert.ok(off.model.storedWeights.has("embed.weight") && off.model.config.tiedEmbeddings);
      // Tokens of the sentence (and one absent from it), so both the gather and the head see them.
      const tokenIndices = [STORIES_SENTENCE_IDS[2], STORIES_SENTENCE_IDS[5], 511];
      const config = parseMethodConfig(trainableTokens, { tokenIndices });
      const rows = new Rng(4).normalArray(3 * heap.model.config.dim, 0.3);
      const ids = tf.tensor2d([STORIES_SENTENCE_IDS], undefined, "int32");
      const run = (model: typeof heap.model) => {
        const applied = trainableTokens.apply(model, config, plainContext(new Rng(1)));
        applied.trainable[0].assign(tf.tensor2d(rows, [3, model.config.dim]));
        const { value, grads } = tf.variableGrads(() => model.lmLoss(ids).loss, applied.trainable);
        const out = {
          loss: value.dataSync()[0],
          grad: grads[applied.trainable[0].name].dataSync() as Float32Array,
          applied,
        };
        return out;
      };
      const a = run(heap.model);
      const b = run(off.model);
      assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
      assert.ok(maxAbsDiff(a.grad, b.grad) < 1e-5, `gradient differs by ${maxAbsDiff(a.grad, b.grad)}`);
      assert.ok(Math.max(...a.grad.map(Math.abs)) > 1e-5);
      assert.throws(() => b.applied.merge!(), /stored off the wasm heap/);
      a.applied.dispose();
      b.applied.dispose();
      ids.dispose();
    } finally {
      heap.model.dispose();
      off.model.dispose();
    }
  },
});
