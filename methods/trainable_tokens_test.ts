/**
 * Trainable tokens against PEFT's definition written out independently: the adapted model equals a
 * plain model whose embedding table had the selected rows replaced (`index_copy`), with a tied head
 * reading the replaced rows too and an untied head left alone; the gradient of the trainable rows
 * equals the full table's gradient restricted to those rows (embedding and tied-head parts summed).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { type LlamaConfig, validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { trainableTokens } from "./trainable_tokens.ts";
import { assertStateRoundTrip, assertTrainsFrozenBase } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

const UNTIED = validateConfig({ ...TINY_CONFIG, tiedEmbeddings: false });
const IDS = [1, 4, 9, 30];

/** A model of `cfg` whose weights are `weights` (a fresh copy of a seeded random model's). */
function modelFrom(cfg: LlamaConfig, weights: Map<string, Float32Array>): LlamaModel {
  return LlamaModel.fromWeights(cfg, new Map([...weights].map(([k, v]) => [k, v.slice()])));
}

function weightsOf(cfg: LlamaConfig): Map<string, Float32Array> {
  const m = LlamaModel.random(cfg, new Rng(5), 0.2);
  const w = new Map([...m.params].map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]));
  m.dispose();
  return w;
}

/** Apply trainable tokens and set its rows to seeded random values (as if trained). */
function adapted(cfg: LlamaConfig, weights: Map<string, Float32Array>) {
  const model = modelFrom(cfg, weights);
  const applied = trainableTokens.apply(
    model,
    parseMethodConfig(trainableTokens, { tokenIndices: IDS }),
    plainContext(new Rng(1)),
  );
  const rows = new Rng(11).normalArray(IDS.length * cfg.dim, 0.5);
  applied.trainable[0].assign(tf.tensor2d(rows, [IDS.length, cfg.dim]));
  return { model, applied, rows };
}

/** The reference: the table with rows IDS replaced by `rows` (PEFT's index_copy), as plain weights. */
function replacedTable(cfg: LlamaConfig, weights: Map<string, Float32Array>, rows: Float32Array) {
  const w = new Map([...weights].map(([k, v]) => [k, v.slice()]));
  const table = w.get("embed.weight")!;
  IDS.forEach((id, j) => table.set(rows.subarray(j * cfg.dim, (j + 1) * cfg.dim), id * cfg.dim));
  return w;
}

for (const cfg of [TINY_CONFIG, UNTIED]) {
  const tied = cfg.tiedEmbeddings ? "tied" : "untied";
  Deno.test(`trainable-tokens (${tied} head): logits equal a plain model with the rows replaced`, () => {
    const weights = weightsOf(cfg);
    const { model, applied, rows } = adapted(cfg, weights);
    const reference = modelFrom(cfg, replacedTable(cfg, weights, rows));
    const ids = tinyBatch(); // holds 1, 4, 9 and 30 and other ids
    const d = maxAbsDiff(logitsOf(model, ids), logitsOf(reference, ids));
    assert.ok(d < 1e-5, `differs from the replaced-table model by ${d}`);
    // And not from the original model (the rows matter, in the head too when tied).
    const original = modelFrom(cfg, weights);
    assert.ok(maxAbsDiff(logitsOf(model, ids), logitsOf(original, ids)) > 1e-3);
    applied.dispose();
    assert.equal(model.hooks.embeddingOverride, undefined);
    [model, reference, original].forEach((m) => m.dispose());
  });

  Deno.test(`trainable-tokens (${tied} head): the rows' gradient is the full table's gradient at those rows`, () => {
    const weights = weightsOf(cfg);
    const { model, applied, rows } = adapted(cfg, weights);
    const reference = modelFrom(cfg, replacedTable(cfg, weights, rows));
    const table = reference.param("embed.weight");
    table.trainable = true;
    const ids = tinyBatch();
    const g = tf.variableGrads(() => model.lmLoss(ids).loss, applied.trainable).grads;
    assert.deepEqual(Object.keys(g), [applied.trainable[0].name], "only the rows get a gradient");
    const gRef = tf.variableGrads(() => reference.lmLoss(ids).loss, [table]).grads[table.name];
    const want = tf.gather(gRef, tf.tensor1d(IDS, "int32")).dataSync();
    const got = g[applied.trainable[0].name].dataSync();
    assert.ok(maxAbsDiff(got, want) < 1e-6, `gradient differs by ${maxAbsDiff(got, want)}`);
    assert.ok(Math.max(...got.map(Math.abs)) > 1e-4, "zero gradient");
    applied.dispose();
    model.dispose();
    reference.dispose();
  });
}

Deno.test("trainable-tokens: identity at init (rows copied), trains with the table frozen, merge writes only those rows", () => {
  const weights = weightsOf(TINY_CONFIG);
  const model = modelFrom(TINY_CONFIG, weights);
  const plain = modelFrom(TINY_CONFIG, weights);
  const config = parseMethodConfig(trainableTokens, { tokenIndices: "9, 1,30" });
  assert.deepEqual(config.tokenIndices, [9, 1, 30]);
  const applied = trainableTokens.apply(model, config, plainContext(new Rng(1)));
  const table = weights.get("embed.weight")!;
  const d = TINY_CONFIG.dim;
  assert.deepEqual(
    applied.trainable[0].dataSync(),
    Float32Array.from([9, 1, 30].flatMap((id) => [...table.subarray(id * d, (id + 1) * d)])),
  );
  assert.equal(maxAbsDiff(logitsOf(model, tinyBatch()), logitsOf(plain, tinyBatch())), 0);
  assertTrainsFrozenBase(model, applied);
  const rows = applied.trainable[0].dataSync() as Float32Array;
  applied.merge!();
  const merged = model.param("embed.weight").dataSync() as Float32Array;
  for (let v = 0; v < TINY_CONFIG.vocabSize; v++) {
    const j = [9, 1, 30].indexOf(v);
    const want = j >= 0 ? rows.subarray(j * d, (j + 1) * d) : table.subarray(v * d, (v + 1) * d);
    assert.deepEqual(merged.subarray(v * d, (v + 1) * d), want, `row ${v}`);
  }
  assert.equal(model.hooks.embeddingOverride, undefined);
  applied.dispose();
  model.dispose();
  plain.dispose();
});

Deno.test("trainable-tokens: state round trip", () =>
  assertStateRoundTrip(trainableTokens, { tokenIndices: [2, 3] }));

Deno.test("trainable-tokens: initWeights=false draws N(0, 1) rows (PEFT torch.randn)", () => {
  const model = modelFrom(TINY_CONFIG, weightsOf(TINY_CONFIG));
  const ids = Array.from({ length: 16 }, (_, i) => i);
  const applied = trainableTokens.apply(
    model,
    parseMethodConfig(trainableTokens, { tokenIndices: ids, initWeights: false }),
    plainContext(new Rng(1)),
  );
  const v = applied.trainable[0].dataSync() as Float32Array;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  // 256 draws: mean within 4 standard errors of 0, sd near 1.
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(v.length), `mean ${mean}`);
  assert.ok(sd > 0.85 && sd < 1.15, `sd ${sd}`);
  applied.dispose();
  model.dispose();
});

Deno.test("trainable-tokens: bad token lists are one-line errors naming the option", () => {
  const parse = (v: unknown) => parseMethodConfig(trainableTokens, { tokenIndices: v });
  assert.deepEqual(parse(7).tokenIndices, [7]);
  assert.throws(() => parseMethodConfig(trainableTokens, {}), /tokenIndices/);
  assert.throws(() => parse([]), /--opt tokenIndices=/);
  assert.throws(() => parse("1,1"), /distinct/);
  assert.throws(() => parse("1,x"), /tokenIndices/);
  assert.throws(() => parse([-1]), /tokenIndices/);
  const model = modelFrom(TINY_CONFIG, weightsOf(TINY_CONFIG));
  assert.throws(
    () => trainableTokens.apply(model, parse([3, 32]), plainContext(new Rng(1))),
    /token id 32 is outside the vocabulary \(32 tokens\); fix --opt tokenIndices/,
  );
  model.dispose();
});

Deno.test("trainable-tokens: PEFT export is trainable_tokens_delta on embed_tokens with token_indices", () => {
  const { model, applied, rows } = adapted(TINY_CONFIG, weightsOf(TINY_CONFIG));
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "TRAINABLE_TOKENS");
  assert.deepEqual(e.config.token_indices, IDS);
  assert.deepEqual(e.config.target_modules, ["embed_tokens"]);
  assert.equal(e.config.init_weights, true);
  assert.deepEqual([...e.tensors.keys()], ["base_model.model.model.embed_tokens.trainable_tokens_delta"]);
  const t = e.tensors.get("base_model.model.model.embed_tokens.trainable_tokens_delta")!;
  assert.deepEqual(t.shape, [IDS.length, TINY_CONFIG.dim]);
  assert.deepEqual(t.data, rows);
  applied.dispose();
  model.dispose();
});
