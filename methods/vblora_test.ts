/**
 * VB-LoRA: A and B against PEFT's `_get_lora_matrices` written out in plain arrays (top-k by
 * sorting, softmax over the selected logits, admixture of bank rows), the forward, where gradients
 * flow (selected logits and bank rows only), counts, the contract and the export layout.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { vblora, VbloraLinear } from "./vblora.ts";
import { parseMethodConfig } from "./registry.ts";
import { assertMergeEquivalent, assertTrainsRestFrozen } from "./contract_test_utils.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

const OPTS = { targets: "v,down", rank: 2, numVectors: 6, vectorLength: 4, topk: 2 };

/** One sub-vector: softmax over the top-k logits, mixing those bank rows. */
function subVector(z: number[], bank: number[][], k: number): number[] {
  const top = z.map((v, i) => [v, i]).sort((x, y) => y[0] - x[0]).slice(0, k);
  const m = Math.max(...top.map(([v]) => v));
  const e = top.map(([v]) => Math.exp(v - m));
  const sum = e.reduce((s, x) => s + x, 0);
  return bank[0].map((_, j) => top.reduce((s, [, i], t) => s + (e[t] / sum) * bank[i][j], 0));
}

Deno.test("vblora: A [r, in] and B [out, r] as PEFT's top-k admixture of the bank; forward adds x A^T B^T", () => {
  const { model, applied } = applyTiny(vblora, OPTS);
  const layer = model.linear("layers.1.mlp.down") as VbloraLinear; // [16x24]
  const bank = layer.bank.arraySync() as number[][];
  const la = layer.logitsA.arraySync() as number[][][]; // [r, 24/4, h]
  const lb = layer.logitsB.arraySync() as number[][][]; // [16/4, r, h]
  const a = la.map((row) => row.flatMap((z) => subVector(z, bank, 2))); // [r, 24]
  const b: number[][] = Array.from({ length: 16 }, () => [0, 0]);
  lb.forEach((tile, t) =>
    tile.forEach((z, i) => subVector(z, bank, 2).forEach((x, l) => (b[t * 4 + l][i] = x)))
  );
  const [ga, gb] = layer.factors();
  assert.ok(maxAbsDiff(ga.dataSync(), a.flat()) < 1e-6);
  assert.ok(maxAbsDiff(gb.dataSync(), b.flat()) < 1e-6);
  const x = tf.randomNormal([3, 24], 0, 1, "float32", 3) as tf.Tensor2D;
  const want = tf.add(layer.base.forward(x), tf.matMul(tf.matMul(x, ga, false, true), gb, false, true));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.dataSync()) < 1e-6);
  const dw = tf.matMul(tf.tensor2d(b), tf.tensor2d(a));
  assert.ok(maxAbsDiff(layer.delta().dataSync(), dw.dataSync()) < 1e-6);
  applied.dispose();
});

Deno.test("vblora: gradients reach only the top-k logits of each sub-vector and the bank rows they select", () => {
  const { model, applied } = applyTiny(vblora, { ...OPTS, targets: "v" });
  const layer = model.linear("layers.0.attn.v") as VbloraLinear;
  const x = tf.randomNormal([4, 16], 0, 1, "float32", 8) as tf.Tensor2D;
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(layer.forward(x))) as tf.Scalar, [
    layer.logitsA,
    layer.bank,
  ]);
  const za = layer.logitsA.arraySync() as number[][][];
  const ga = grads[layer.logitsA.name].arraySync() as number[][][];
  const used = new Set<number>();
  za.forEach((row, i) =>
    row.forEach((z, j) => {
      const top = new Set(z.map((v, t) => [v, t]).sort((p, q) => q[0] - p[0]).slice(0, 2).map(([, t]) => t));
      top.forEach((t) => used.add(t));
      z.forEach((_, t) => {
        if (!top.has(t)) assert.equal(ga[i][j][t], 0, "an unselected logit got a gradient");
      });
      assert.ok([...top].some((t) => ga[i][j][t] !== 0));
    })
  );
  // Layer 1's v and B's logits also select rows; a row none of layer 0's A or B selects gets none.
  for (const tile of layer.logitsB.arraySync() as number[][][]) {
    for (const z of tile) {
      z.map((v, t) => [v, t]).sort((p, q) => q[0] - p[0]).slice(0, 2).forEach(([, t]) => used.add(t));
    }
  }
  const gBank = grads[layer.bank.name].arraySync() as number[][];
  gBank.forEach((row, i) => {
    if (!used.has(i)) assert.ok(row.every((g) => g === 0), `bank row ${i} is never selected`);
  });
  applied.dispose();
});

Deno.test("vblora: changes the function at init (PEFT), trains with the base frozen, state round trip, merges", () => {
  const before = logitsOf(tinyModel(), tinyBatch());
  const { model, applied } = applyTiny(vblora, OPTS);
  const init = logitsOf(model, tinyBatch());
  assert.ok(maxAbsDiff(before, init) > 1e-5);
  assertStateRoundTrip(vblora, OPTS);
  assertTrainsRestFrozen(model, applied);
  assertMergeEquivalent(model, applied, init);
});

Deno.test("vblora: h b + h r (in + out) / b trainable values; shape and topk errors; export layout", () => {
  const { applied } = applyTiny(vblora, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  const perLayer = (6 * 2 * (c.dim + kv)) / 4 + (6 * 2 * (c.hiddenDim + c.dim)) / 4;
  assert.equal(trainableCount(applied), 6 * 4 + c.nLayers * perLayer);
  const e = applied.peftExport!();
  assert.equal(e.refused, undefined);
  assert.equal(e.config.peft_type, "VBLORA");
  assert.deepEqual(e.tensors.get("base_model.vblora_vector_bank")!.shape, [6, 4]);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.1.mlp.down_proj.vblora_logits_A")!.shape, [
    2,
    6,
    6,
  ]);
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.1.mlp.down_proj.vblora_logits_B")!.shape, [
    4,
    2,
    6,
  ]);
  applied.dispose();
  assert.throws(
    () => applyTiny(vblora, { ...OPTS, vectorLength: 5 }),
    /not divisible by --opt vectorLength=5/,
  );
  assert.throws(() => applyTiny(vblora, { ...OPTS, topk: 7 }), /topk=7 exceeds --opt numVectors=6/);
  // Interleaved RoPE: q's rows are permuted in the checkpoint; the export is refused.
  const cfg = validateConfig({ ...TINY_CONFIG, ropeStyle: "interleaved" });
  const model = LlamaModel.random(cfg, new Rng(1), 0.2);
  const q = vblora.apply(
    model,
    parseMethodConfig(vblora, { ...OPTS, targets: "q" }),
    plainContext(new Rng(1)),
  );
  assert.match(q.peftExport!().refused ?? "", /permutes the output rows of layers.0.attn.q/);
  q.dispose();
});
