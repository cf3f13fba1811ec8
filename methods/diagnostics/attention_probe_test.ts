import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { TINY_CONFIG, tinyModel } from "../tiny_test_utils.ts";
import type { LlamaModel } from "../../models/llama.ts";
import { type AttentionSample, compareAttentionEntropy } from "./attention_entropy.ts";
import { compareProbes, probeAttentionEntropy, probeLengths } from "./attention_probe.ts";

await initBackend("cpu");

function close(actual: number, expected: number, tol: number, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);
}

/** Deterministic token ids in [0, vocab), one sequence per seed. */
function sequences(count: number, length: number): number[][] {
  return Array.from(
    { length: count },
    (_, s) => Array.from({ length }, (_, i) => (7 * i + 13 * s + 3) % TINY_CONFIG.vocabSize),
  );
}

/**
 * Entropy of the normalised squared singular values of the causal uniform matrix
 * L[i, j] = 1 / (i + 1) for j <= i, by ml-matrix's SVD (not the Gram route the probe uses).
 */
function causalUniformEntropy(l: number): number {
  const m = new Matrix(l, l);
  for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) m.set(i, j, 1 / (i + 1));
  const s2 = new SingularValueDecomposition(m).diagonal.map((s) => s * s);
  const total = s2.reduce((a, b) => a + b, 0);
  return -s2.reduce((h, v) => (v > 0 ? h + (v / total) * Math.log(v / total) : h), 0);
}

/** Zero every layer's query weights: all scores are 0, so causal softmax is uniform per row. */
function zeroQueries(model: LlamaModel): void {
  for (let layer = 0; layer < model.config.nLayers; layer++) {
    const q = model.params.get(`layers.${layer}.attn.q.weight`)!;
    q.assign(tf.zerosLike(q));
  }
}

Deno.test("probe: one point per length, entropies in [0, ln l], no tensors leaked, hook removed", () => {
  const model = tinyModel(3);
  const lengths = [16, 4, 8, 32];
  // The first pass fills the model's own per-length RoPE and mask caches; the second must add nothing.
  probeAttentionEntropy(model, sequences(3, 32), lengths);
  const before = tf.memory().numTensors;
  const r = probeAttentionEntropy(model, sequences(3, 32), lengths);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(model.hooks.attentionProbs, undefined);
  assert.deepEqual(r.overall.lengths, [4, 8, 16, 32]);
  assert.deepEqual(r.sequences, [3, 3, 3, 3]);
  assert.equal(r.perLayer.length, TINY_CONFIG.nLayers);
  for (const c of [...r.perLayer, r.overall]) {
    assert.equal(c.entropy.length, 4);
    c.entropy.forEach((s, i) => {
      assert.ok(s >= 0 && s <= Math.log(c.lengths[i]) + 1e-9, `S(${c.lengths[i]}) = ${s}`);
    });
    assert.ok(Number.isFinite(c.fit.a) && Number.isFinite(c.fit.b) && c.fit.r2 <= 1 + 1e-12);
  }
  // Overall is the layer mean at each length.
  r.overall.entropy.forEach((s, i) =>
    close(s, (r.perLayer[0].entropy[i] + r.perLayer[1].entropy[i]) / 2, 1e-12)
  );
  model.dispose();
});

Deno.test("probe agrees with attentionEntropyCurve on the same captured matrices", () => {
  const model = tinyModel(5);
  const seqs = sequences(2, 16);
  // Capture layer 1's attention of every sequence and head by hand, one sample per length.
  const samples: AttentionSample[] = [];
  for (const l of [4, 8, 16]) {
    const heads: Float32Array[] = [];
    model.hooks.attentionProbs = (layer, probs) => {
      if (layer !== 1) return;
      const d = probs.dataSync() as Float32Array;
      for (let k = 0; k < d.length / (l * l); k++) heads.push(d.slice(k * l * l, (k + 1) * l * l));
    };
    const ids = tf.tensor2d(seqs.map((s) => s.slice(0, l)).flat(), [2, l], "int32");
    model.hidden(ids).dispose();
    ids.dispose();
    samples.push({ length: l, heads });
  }
  delete model.hooks.attentionProbs;
  const manual = compareAttentionEntropy(samples, samples).frozen;
  const probe = probeAttentionEntropy(model, seqs, [4, 8, 16]).perLayer[1];
  // The probe renormalises float32 rows (sums 1 +- 1e-7), hence the small tolerance.
  manual.curve.mean.forEach((s, i) => close(probe.entropy[i], s, 1e-6, `l = ${probe.lengths[i]}`));
  close(probe.fit.b, manual.fit.b, 1e-6, "b");
  model.dispose();
});

Deno.test("uniform causal attention (zero queries) gives the closed-form entropy at every length", () => {
  const model = tinyModel(7);
  zeroQueries(model);
  const lengths = [2, 4, 8, 16, 32];
  const r = probeAttentionEntropy(model, sequences(2, 32), lengths);
  const expected = lengths.map(causalUniformEntropy);
  // Sanity of the closed form itself: L is full rank, not rank 1, so S lies strictly inside (0, ln l).
  expected.forEach((s, i) => assert.ok(s > 0.1 && s < Math.log(lengths[i])));
  for (const c of [...r.perLayer, r.overall]) {
    c.entropy.forEach((s, i) => close(s, expected[i], 1e-5, `layer ${"layer" in c ? c.layer : "all"}`));
  }
  model.dispose();
});

Deno.test("prefix and soft prompt: the real tokens' block is renormalised to the same closed form", () => {
  const model = tinyModel(7);
  zeroQueries(model);
  const c = TINY_CONFIG;
  const p = 5;
  const lengths = [4, 8, 16];
  const expected = lengths.map(causalUniformEntropy);
  // Zero prefix keys score 0 like every other key: row r is uniform over p + r + 1 keys, and
  // its last r + 1 entries renormalise to the causal uniform row again.
  const k = tf.zeros([p, c.nKvHeads * c.headDim]) as tf.Tensor2D;
  model.hooks.kvPrefix = () => ({ k, v: k });
  const withPrefix = probeAttentionEntropy(model, sequences(2, 16), lengths);
  delete model.hooks.kvPrefix;
  withPrefix.overall.entropy.forEach((s, i) => close(s, expected[i], 1e-5, "prefix"));
  const prompt = tf.zeros([p, c.dim]) as tf.Tensor2D;
  model.hooks.promptEmbeddings = () => prompt;
  const withPrompt = probeAttentionEntropy(model, sequences(2, 16), lengths);
  delete model.hooks.promptEmbeddings;
  withPrompt.overall.entropy.forEach((s, i) => close(s, expected[i], 1e-5, "prompt"));
  tf.dispose([k, prompt]);
  model.dispose();
});

Deno.test("short sequences drop out per length; a previous hook is chained and restored, even on error", () => {
  const model = tinyModel(2);
  const seen: number[] = [];
  const previous = (layer: number) => void seen.push(layer);
  model.hooks.attentionProbs = previous;
  const r = probeAttentionEntropy(model, [...sequences(1, 4), ...sequences(2, 16)], [4, 8, 16, 24]);
  assert.deepEqual(r.overall.lengths, [4, 8, 16], "no sequence reaches 24");
  assert.deepEqual(r.sequences, [3, 2, 2]);
  assert.equal(seen.length, 3 * TINY_CONFIG.nLayers);
  assert.equal(model.hooks.attentionProbs, previous);
  // Default lengths (probeLengths up to the longest, 16) where all three sequences take part.
  const all = probeAttentionEntropy(model, [...sequences(1, 8), ...sequences(2, 16)], undefined, {
    minSequences: 3,
  });
  assert.deepEqual(all.overall.lengths, [4, 8]);
  assert.deepEqual(all.sequences, [3, 3]);

  const before = tf.memory().numTensors;
  const q = model.linears.get("layers.1.attn.q")!;
  model.linears.set(
    "layers.1.attn.q",
    {
      ...q,
      forward: () => {
        throw new Error("boom");
      },
    } as typeof q,
  );
  assert.throws(() => probeAttentionEntropy(model, sequences(2, 8), [4, 8]), /boom/);
  assert.equal(model.hooks.attentionProbs, previous);
  assert.equal(tf.memory().numTensors, before);
  model.linears.set("layers.1.attn.q", q);
  delete model.hooks.attentionProbs;

  assert.throws(() => probeAttentionEntropy(model, sequences(2, 8), [4, 64]), /not an integer in \[1, 32\]/);
  assert.throws(
    () => probeAttentionEntropy(model, sequences(2, 6), [4, 8]),
    /needs two lengths.*longest sequence 6/,
  );
  assert.equal(model.hooks.attentionProbs, undefined);
  model.dispose();
});

Deno.test("compareProbes: deltaB is the slope change overall and per layer; probeLengths caps", () => {
  const model = tinyModel(4);
  const seqs = sequences(2, 32);
  const frozen = probeAttentionEntropy(model, seqs, [4, 8, 16, 32]);
  zeroQueries(model);
  const adapted = probeAttentionEntropy(model, seqs, [4, 8, 16, 32]);
  const cmp = compareProbes(frozen, adapted);
  close(cmp.deltaB, adapted.overall.fit.b - frozen.overall.fit.b, 1e-15);
  cmp.deltaBPerLayer.forEach((d, i) => close(d, adapted.perLayer[i].fit.b - frozen.perLayer[i].fit.b, 1e-15));
  assert.deepEqual(probeLengths(32), [4, 8, 16, 24, 32]);
  assert.deepEqual(probeLengths(1000).at(-1), 128);
  model.dispose();
});
