import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { validateConfig } from "./config.ts";
import { LlamaModel } from "./llama.ts";
import { openBlas } from "./native.ts";
import { Rng } from "./util/rng.ts";

/** Four layers, so that the plain pass holds four layers' intermediates and the checkpointed one one. */
const CONFIG = validateConfig({
  dim: 32,
  hiddenDim: 64,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 40,
  maxSeqLen: 64,
  tiedEmbeddings: true,
});

/**
 * A model whose trainable variables are read in every way a layer can read them: norm gains
 * (fused RMSNorm), q and down projections (trainable linears), and key/value prefixes shared by
 * all layers through a hook (gradients summed over the layers).
 */
function setup(seed: number) {
  const rng = new Rng(seed);
  const model = LlamaModel.random(CONFIG, rng.fork("model"), 0.2);
  for (const name of ["layers.1.attn_norm.weight", "layers.2.mlp_norm.weight", "norm.weight"]) {
    model.param(name).trainable = true;
  }
  for (const name of ["layers.0.attn.q.weight", "layers.3.mlp.down.weight"]) {
    model.param(name).trainable = true;
  }
  const kv = CONFIG.nKvHeads * CONFIG.dim / CONFIG.nHeads;
  const pk = tf.variable(tf.tensor2d(rng.normalArray(3 * kv, 0.5), [3, kv]), true, `ckpt_pk_${seed}`);
  const pv = tf.variable(tf.tensor2d(rng.normalArray(3 * kv, 0.5), [3, kv]), true, `ckpt_pv_${seed}`);
  model.hooks.kvPrefix = () => ({ k: pk, v: pv });
  const vars = [...model.params.values()].filter((v) => v.trainable).concat([pk, pv]);
  const b = 4;
  const t = 48;
  const ids = tf.tensor2d(
    Int32Array.from({ length: b * t }, () => rng.int(CONFIG.vocabSize)),
    [b, t],
    "int32",
  );
  // Right padding on two rows exercises the key mask the checkpoint saves for the recompute.
  const mask = tf.tensor2d(
    Float32Array.from({ length: b * t }, (_, i) => (i % t) < t - 5 * (i % 2 ? Math.floor(i / t) : 0) ? 1 : 0),
    [b, t],
  );
  const dispose = () => {
    model.dispose();
    tf.dispose([pk, pv, ids, mask]);
  };
  return { model, vars, ids, mask, dispose };
}

/** Loss and every trainable gradient of one step. */
function step(s: ReturnType<typeof setup>): { loss: number; grads: Map<string, Float32Array> } {
  const out = new Map<string, Float32Array>();
  let loss = NaN;
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => s.model.lmLoss(s.ids, { attentionMask: s.mask }).loss,
      s.vars,
    );
    for (const v of s.vars) out.set(v.name, grads[v.name].dataSync() as Float32Array);
    loss = value.dataSync()[0];
  });
  return { loss, grads: out };
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

for (const backend of ["cpu", "native"] as const) {
  Deno.test({
    name:
      `--grad-checkpoint (${backend}): loss and gradients equal the plain pass bit for bit, no tensor leaks`,
    ignore: backend === "native" && openBlas() === null,
    fn: async () => {
      await initBackend(backend);
      const s = setup(3);
      const plain = step(s);
      s.model.gradCheckpoint = true;
      const before = tf.memory().numTensors;
      const ckpt = step(s); // the first call probes each layer's variables
      const again = step(s); // later calls use the cached variables
      assert.equal(tf.memory().numTensors, before, "tensors leaked by a checkpointed step");
      assert.equal(ckpt.loss, plain.loss);
      assert.equal(again.loss, plain.loss);
      assert.equal(ckpt.grads.size, s.vars.length);
      for (const [name, g] of plain.grads) {
        // The recompute runs the same kernels on the same values, and each gradient sums its
        // contributions in the same (reverse tape) order.
        assert.deepEqual(bits(ckpt.grads.get(name)!), bits(g), `${backend} gradient of ${name}`);
        assert.deepEqual(bits(again.grads.get(name)!), bits(g), `${backend} gradient of ${name}, cached`);
        assert.ok(g.some((v) => v !== 0), `${name} gets a gradient`);
      }
      // Without a tape (evaluation) the flag changes nothing.
      const h0 = tf.tidy(() => s.model.hidden(s.ids).dataSync());
      s.model.gradCheckpoint = false;
      const h1 = tf.tidy(() => s.model.hidden(s.ids).dataSync());
      assert.deepEqual(h0, h1);
      s.dispose();
    },
  });
}

Deno.test("--grad-checkpoint lowers a step's peak tensor bytes (tf.profile, four layers)", async () => {
  await initBackend("cpu");
  const s = setup(5);
  const peak = async () => (await tf.profile(() => void step(s))).peakBytes;
  const off = await peak();
  s.model.gradCheckpoint = true;
  await peak(); // probe once, so the measured step is a steady one
  const on = await peak();
  s.dispose();
  // Plain: four layers' intermediates (scores [4, 4, 48, 51], MLP [192, 64], ...) held until the
  // backward pass; checkpointed: four layer inputs [192, 32] plus one layer's intermediates.
  assert.ok(on < 0.75 * off, `peak bytes ${on} with checkpointing vs ${off} without`);
});
