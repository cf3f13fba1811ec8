import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { NAMED_MODELS } from "./named_models.ts";
import { validateConfig } from "./config.ts";
import { STORIES_MODEL, STORIES_SENTENCE_IDS, STORIES_SENTENCE_LOSS, STORIES_TOKENIZER } from "./fixtures.ts";
import { configToHf, toHfName, writeHfFolder } from "./hf.ts";
import { isStorableWeight, LlamaModel } from "./llama.ts";
import { checkModel, loadModel, OFF_HEAP_AUTO_BYTES, parameterBytes, usesOffHeap } from "./load.ts";
import { openBlas } from "./native.ts";
import { OffHeapLinear } from "./offheap_linear.ts";
import { writeFileAtomic } from "./util/io.ts";
import { InputError } from "./util/args.ts";
import { Rng } from "./util/rng.ts";

const available = openBlas() !== null;

/** Loss and the gradients of every norm gain (made trainable), which flow through every frozen linear's dx. */
function lossAndGrads(model: LlamaModel, ids: tf.Tensor2D, mask?: tf.Tensor2D) {
  const gains = [...model.params].filter(([n]) => /norm\.weight$/.test(n)).map(([, v]) => v);
  for (const v of gains) v.trainable = true;
  const { value, grads } = tf.variableGrads(() => model.lmLoss(ids, { attentionMask: mask }).loss, gains);
  const out = {
    loss: value.dataSync()[0],
    grads: gains.map((v) => grads[v.name].dataSync() as Float32Array),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

Deno.test({
  name: "off-heap model: stories260K gives the published loss and the same loss and gradients as in-heap",
  ignore: !available,
  fn: async () => {
    for (const backend of ["native", "cpu"] as const) {
      await initBackend(backend);
      const ids = tf.tensor2d([STORIES_SENTENCE_IDS], [1, STORIES_SENTENCE_IDS.length], "int32");
      const heap = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "never" });
      const off = await loadModel(STORIES_MODEL, STORIES_TOKENIZER, { offHeap: "always" });
      assert.equal(heap.model.storedWeights.size, 0);
      assert.ok(off.model.storedWeights.has("embed.weight"));
      assert.ok(off.model.linear("layers.0.attn.q") instanceof OffHeapLinear);
      assert.ok(!off.model.params.has("layers.0.attn.q.weight"));
      const a = lossAndGrads(heap.model, ids);
      const b = lossAndGrads(off.model, ids);
      assert.ok(Math.abs(b.loss - STORIES_SENTENCE_LOSS) < 1e-4, `${backend} loss ${b.loss}`);
      assert.equal(b.loss, a.loss);
      assert.deepEqual(b.grads, a.grads);
      heap.model.dispose();
      off.model.dispose();
      ids.dispose();
    }
  },
});

/** A small random model with every option (q/k norm, q/k/v bias, untied head), vocab 512 for the fixture tokenizer. */
const SMALL = validateConfig({
  architecture: "Qwen2ForCausalLM",
  dim: 24,
  hiddenDim: 40,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 512,
  maxSeqLen: 32,
  ropeStyle: "half",
  qkNorm: false,
  qkvBias: true,
  tiedEmbeddings: false,
});

Deno.test({
  name:
    "off-heap model: a BF16 folder stays BF16 off the heap, same loss and gradients, heap without the weights",
  ignore: !available,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (
        const config of [SMALL, {
          ...SMALL,
          tiedEmbeddings: true,
          architecture: "Qwen3ForCausalLM",
          qkNorm: true,
          qkvBias: false,
        }]
      ) {
        const random = LlamaModel.random(config, new Rng(4), 0.2);
        const weights = new Map([...random.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
        random.dispose();
        await writeHfFolder(dir, config, weights, { dtype: "BF16" });
        for (const backend of ["native", "cpu"] as const) {
          await initBackend(backend);
          const ids = tf.tensor2d([[1, 40, 300, 7, 9, 511, 2], [5, 6, 10, 0, 2, 8, 1]], [2, 7], "int32");
          const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]], [2, 7], "int32");
          const before = tf.memory().numBytes;
          const heap = await loadModel(dir, STORIES_TOKENIZER, { offHeap: "never" });
          const heapBytes = tf.memory().numBytes - before;
          const off = await loadModel(dir, STORIES_TOKENIZER, { offHeap: "always" });
          const offBytes = tf.memory().numBytes - before - heapBytes;
          const { total, storable } = parameterBytes(heap.model.config);
          assert.equal(heapBytes, total);
          assert.equal(offBytes, total - storable, "only norm gains and biases are tensors");
          for (const [name, w] of off.model.storedWeights) {
            assert.ok(isStorableWeight(name));
            assert.equal(w.dtype, "BF16", name);
          }
          assert.equal(off.model.storedBytes(), storable / 2);
          const a = lossAndGrads(heap.model, ids, mask);
          const b = lossAndGrads(off.model, ids, mask);
          assert.equal(b.loss, a.loss, `${backend} tied=${config.tiedEmbeddings}`);
          assert.deepEqual(b.grads, a.grads);
          // denseWeight decodes to the in-heap weight exactly.
          const dense = off.model.linear("layers.1.mlp.down").denseWeight();
          assert.deepEqual(dense.dataSync(), heap.model.param("layers.1.mlp.down.weight").dataSync());
          tf.dispose([dense, ids, mask]);
          heap.model.dispose();
          off.model.dispose();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The published Qwen3-0.6B config (config.json on the Hugging Face hub). */
const QWEN3_06B_HF = NAMED_MODELS["qwen3-0.6b"].config;

/**
 * A Qwen3-0.6B folder whose safetensors file has the real header and the real size but is sparse
 * (no data written): enough for the checks that read headers only.
 */
async function sparseQwen3(dir: string): Promise<void> {
  await writeFileAtomic(join(dir, "config.json"), JSON.stringify(QWEN3_06B_HF));
  const config = (await import("./hf.ts")).configFromHf(QWEN3_06B_HF);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of LlamaModel.parameterShapes(config)) {
    const bytes = 2 * shape.reduce((a, b) => a * b, 1);
    header[toHfName(name)] = { dtype: "BF16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const file = await Deno.open(join(dir, "model.safetensors"), { write: true, create: true });
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  await file.write(len);
  await file.write(json);
  await file.truncate(8 + json.length + offset);
  file.close();
}

Deno.test("off-heap model: a Qwen3-0.6B-size model is refused on wasm (one line naming --backend native), off-heap on native", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await sparseQwen3(dir);
    const err = await checkModel(dir, STORIES_TOKENIZER, { backend: "wasm" }).catch((e) => e);
    assert.ok(err instanceof InputError, String(err));
    assert.match(
      err.message,
      /needs 2\.\d\d GiB of float32 tensors, more than the wasm backend's 4 GiB wasm heap/,
    );
    assert.match(err.message, /use --backend native/);
    assert.ok(!err.message.includes("\n"));
    const checked = await checkModel(dir, STORIES_TOKENIZER, { backend: "native" });
    assert.equal(checked.config.nLayers, 28);
    assert.ok(usesOffHeap(checked.config, "auto", "native"));
    assert.ok(!usesOffHeap(checked.config, "auto", "wasm"));
    // Native with weights forced onto the heap exceeds it the same way.
    await assert.rejects(
      checkModel(dir, STORIES_TOKENIZER, { backend: "native", offHeap: "never" }),
      InputError,
    );
    // 596,049,920 parameters (the published count), 440 M of them in storable weights.
    const { total, storable } = parameterBytes(checked.config);
    assert.equal(total / 4, 596_049_920);
    assert.ok(storable > OFF_HEAP_AUTO_BYTES);
    assert.ok(configToHf(checked.config).tie_word_embeddings);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
