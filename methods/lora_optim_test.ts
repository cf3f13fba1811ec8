import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { lora, type LoraLinear } from "./lora.ts";
import { GroupedAdamW, loraFaGradient } from "./lora_optim.ts";
import { AdamW } from "./optim.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, trainSteps } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** One update of `applied`'s own optimizer at learning rate lr; returns each trainable's change. */
function oneStep(
  applied: ReturnType<typeof applyTiny>["applied"],
  model: ReturnType<typeof applyTiny>["model"],
  lr: number,
) {
  const ids = tinyBatch();
  const vars = applied.trainable;
  const before = vars.map((v) => v.dataSync().slice());
  const opt = applied.makeOptimizer!({});
  const { value, grads } = tf.variableGrads(() => model.lmLoss(ids).loss, vars);
  const list = vars.map((v) => grads[v.name]);
  opt.apply(list, lr).dispose();
  const deltas = vars.map((v, i) => Float32Array.from(v.dataSync(), (x, j) => x - before[i][j]));
  const g = list.map((t) => t.dataSync().slice());
  tf.dispose([value, ...list]);
  opt.dispose();
  return { deltas, grads: g };
}

Deno.test("LoRA+: identity at init, trains, merges; default lora has no own optimizer", () => {
  checkContract(lora, { targets: "q+v", rank: 2, loraPlusLrRatio: 16 });
  const plain = applyTiny(lora, { targets: "q+v", rank: 2 });
  assert.equal(plain.applied.makeOptimizer, undefined);
  plain.applied.dispose();
});

Deno.test("LoRA+: the optimizer steps B at 16 lr and A at lr (Adam's first step is lr * sign(g))", () => {
  const { model, applied } = applyTiny(lora, { targets: "q+v", rank: 2, loraPlusLrRatio: 16 });
  // Give B values so A gets a gradient too.
  for (const l of [model.linear("layers.0.attn.q"), model.linear("layers.1.attn.v")] as LoraLinear[]) {
    l.b.assign(tf.randomNormal(l.b.shape, 0, 0.1, "float32", 3));
  }
  const lr = 1e-3;
  const { deltas, grads } = oneStep(applied, model, lr);
  let checked = 0;
  applied.trainable.forEach((v, i) => {
    const want = v.shape[0] === 2 ? lr : 16 * lr; // A [r, in] vs B [out, r]
    deltas[i].forEach((d, j) => {
      if (Math.abs(grads[i][j]) < 1e-5) return; // eps would show
      assert.ok(Math.abs(Math.abs(d) - want) < 1e-3 * want, `|step| ${Math.abs(d)} vs ${want}`);
      checked++;
    });
  });
  assert.ok(checked > 100);
  applied.dispose();
});

Deno.test("LoRA+ with ratio 1 is plain AdamW, bit for bit", () => {
  const a = applyTiny(lora, { targets: "q+v", rank: 2, loraPlusLrRatio: 1 });
  const b = applyTiny(lora, { targets: "q+v", rank: 2 });
  trainSteps(a.model, a.applied, 3);
  trainSteps(b.model, b.applied, 3);
  assert.equal(maxAbsDiff(logitsOf(a.model, tinyBatch()), logitsOf(b.model, tinyBatch())), 0);
  a.applied.dispose();
  b.applied.dispose();
});

Deno.test("LoRA-FA: only B trains (r out per layer), A keeps its init, merges", () => {
  const { model } = checkContract(lora, { targets: "q+k+v+o", rank: 2, loraFa: true });
  assert.ok(model);
  const { model: m2, applied } = applyTiny(lora, { targets: "q+v", rank: 2, loraFa: true });
  const c = TINY_CONFIG;
  assert.equal(trainableCount(applied), c.nLayers * 2 * (c.dim + 8));
  const layer = m2.linear("layers.0.attn.q") as LoraLinear;
  const a0 = layer.a.dataSync().slice();
  assert.ok(!applied.trainable.includes(layer.a));
  trainSteps(m2, applied, 3);
  assert.deepEqual(layer.a.dataSync(), a0);
  assert.ok(layer.b.dataSync().some((x) => x !== 0));
  applied.dispose();
});

Deno.test("LoRA-FA: B's gradient is g_B (A A^T)^-1 / s^2 (PEFT LoraFAOptimizer), and the optimizer uses it", () => {
  // Closed form with a 2x2 inverse written out.
  const a = tf.tensor2d([[1, 2, 0], [0, 1, 1]]); // A A^T = [[5, 2], [2, 2]], inverse [[1/3, -1/3], [-1/3, 5/6]]
  const g = tf.tensor2d([[1, 0], [0, 1], [2, -1]]);
  const inv = [[1 / 3, -1 / 3], [-1 / 3, 5 / 6]];
  const want = (g.arraySync() as number[][]).map((row) =>
    [0, 1].map((j) => (row[0] * inv[0][j] + row[1] * inv[1][j]) / 4)
  );
  assert.ok(maxAbsDiff(loraFaGradient(g, a, 2).dataSync(), want.flat()) < 1e-5);
  // The first Adam step of B follows the sign of the projected gradient, not of the raw one.
  const { model, applied } = applyTiny(lora, { targets: "v", rank: 2, loraFa: true });
  const lr = 1e-3;
  const layers = applied.trainable.map((b) =>
    [...model.linears.values()].find((l) => (l as LoraLinear).b === b) as LoraLinear
  );
  // Strongly correlated rows of A, so (A A^T)^-1 mixes the two columns of g_B with opposite signs.
  for (const l of layers) {
    const row = tf.slice(l.a, [0, 0], [1, -1]);
    l.a.assign(
      tf.concat([row, tf.add(tf.mul(row, 0.9), tf.randomNormal(row.shape, 0, 0.05, "float32", 8))], 0),
    );
  }
  const { deltas, grads } = oneStep(applied, model, lr);
  let differs = 0;
  layers.forEach((l, i) => {
    const [out, r] = l.b.shape;
    const proj = loraFaGradient(tf.tensor2d(grads[i], [out, r]), l.a, 2).dataSync();
    proj.forEach((p, j) => {
      if (Math.abs(p) < 1e-6) return;
      assert.equal(Math.sign(deltas[i][j]), -Math.sign(p));
      if (Math.sign(p) !== Math.sign(grads[i][j])) differs++;
    });
  });
  assert.ok(differs > 0, "the projection never changed a sign: the test would not see it");
  applied.dispose();
});

Deno.test("GroupedAdamW with unit multipliers equals AdamW", () => {
  const v1 = tf.variable(tf.tensor1d([1, -2, 3]));
  const v2 = tf.variable(tf.tensor1d([1, -2, 3]));
  const g = tf.tensor1d([0.5, 0.1, -0.3]);
  const a = new GroupedAdamW([v1], [1], { weightDecay: 0.1, clipNorm: 0.2 });
  const b = new AdamW([v2], { weightDecay: 0.1, clipNorm: 0.2 });
  for (let i = 0; i < 3; i++) {
    a.apply([g], 0.01).dispose();
    b.apply([g], 0.01).dispose();
  }
  assert.ok(maxAbsDiff(v1.dataSync(), v2.dataSync()) < 1e-7);
});
