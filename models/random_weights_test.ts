import assert from "node:assert/strict";
import { validateConfig } from "./config.ts";
import { initValues, LlamaModel } from "./llama.ts";
import { randomStoredWeights } from "./random_weights.ts";
import { StoredTensor } from "./stored.ts";
import { Rng } from "./util/rng.ts";

const config = validateConfig({
  dim: 16,
  hiddenDim: 24,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 1,
  vocabSize: 40,
  maxSeqLen: 8,
  qkNorm: true,
  tiedEmbeddings: true,
});

Deno.test("randomStoredWeights: LlamaModel.random's draws, linear weights and embeddings rounded to bf16 off the heap", () => {
  const stored = randomStoredWeights(config, new Rng(7));
  assert.deepEqual([...stored.keys()].sort(), [...LlamaModel.parameterShapes(config).keys()].sort());
  for (const [name, shape] of LlamaModel.parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const reference = initValues(name, size, config.nLayers, new Rng(7));
    const w = stored.get(name)!;
    if (w instanceof StoredTensor) {
      assert.equal(w.dtype, "BF16", name);
      // bf16 keeps 8 significant bits: round-to-nearest errs by at most half an ulp, 2^-8 relative.
      const values = w.decodeRows(0, w.rows);
      for (let i = 0; i < size; i++) {
        assert.ok(Math.abs(values[i] - reference[i]) <= Math.abs(reference[i]) * 2 ** -8, `${name}[${i}]`);
      }
      assert.ok(/weight$/.test(name) && !/norm/.test(name), name);
    } else {
      assert.deepEqual(w, reference, name);
      assert.ok(/norm|bias/.test(name), `${name} should be stored off the heap`);
    }
  }
});
