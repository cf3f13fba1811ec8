import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { adalora, adaloraBudget, AdaloraLinear } from "./adalora.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { TINY_CONFIG, tinyModel, trainSteps } from "./tiny_test_utils.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_test_utils.ts";

await initBackend("cpu");

const OPTS = { initR: 6, targetR: 4, targets: "q+v" };

function nonzeroLambdas(state: Map<string, { data: Float32Array }>): number[] {
  return [...state].filter(([n]) => n.endsWith(".lora_E")).map(([, t]) =>
    t.data.filter((x) => x !== 0).length
  );
}

Deno.test("adalora: identity at init, trains with a frozen base, merges to the same function", () => {
  assertIdentityTrainsMerges(adalora, OPTS);
});

Deno.test("adalora: trainable parameters = initR (in + out + 1) per adapted layer", () => {
  const { applied } = applyTiny(adalora, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  assert.equal(trainableCount(applied), c.nLayers * OPTS.initR * (c.dim + c.dim + 1 + c.dim + kv + 1));
  applied.dispose();
});

Deno.test("adalora: budget schedule is flat, cubic, then the target (PEFT budget_schedule)", () => {
  const s = { initBudget: 24, targetBudget: 16, tinit: 2, tfinal: 4, totalSteps: 20, deltaT: 3 };
  assert.deepEqual(adaloraBudget(1, s), { budget: 24, mask: false });
  assert.deepEqual(adaloraBudget(2, s), { budget: 24, mask: false });
  // t = 9: 1 - (9-2)/(20-4-2) = 1/2 -> floor(8/8 + 16) = 17; 9 % 3 == 0 allocates.
  assert.deepEqual(adaloraBudget(9, s), { budget: 17, mask: true });
  // t = 5: (11/14)^3 * 8 = 3.88 -> 19; 5 % 3 != 0.
  assert.deepEqual(adaloraBudget(5, s), { budget: 19, mask: false });
  assert.equal(adaloraBudget(16, s).budget, 16);
  assert.deepEqual(adaloraBudget(17, s), { budget: 16, mask: true });
  assert.deepEqual(adaloraBudget(20, s), { budget: 16, mask: true });
  for (let t = 3; t < 16; t++) assert.ok(adaloraBudget(t + 1, s).budget <= adaloraBudget(t, s).budget);
});

Deno.test("adalora: after totalSteps updates the nonzero Lambda entries equal the target budget", () => {
  const model = tinyModel();
  const ctx = plainContext(new Rng(1), 20);
  const applied = adalora.apply(model, parseMethodConfig(adalora, { ...OPTS, tinit: 2, tfinal: 4 }), ctx);
  const nLayers = 2 * TINY_CONFIG.nLayers;
  const schedule = {
    initBudget: 6 * nLayers,
    targetBudget: 4 * nLayers,
    tinit: 2,
    tfinal: 4,
    totalSteps: 20,
    deltaT: 1,
  };
  // Count the nonzero Lambda entries after every update (t = step + 1).
  const counts: number[] = [];
  const inner = applied.afterStep!;
  const losses = trainSteps(model, {
    ...applied,
    afterStep: (grads, step) => {
      inner(grads, step);
      counts.push(nonzeroLambdas(applied.state()).reduce((a, b) => a + b));
    },
  }, 20);
  assert.ok(losses.every(Number.isFinite));
  assert.equal(counts[19], OPTS.targetR * nLayers);
  assert.equal(counts[1], OPTS.initR * nLayers); // warm-up: nothing masked
  for (let t = 3; t <= 20; t++) assert.equal(counts[t - 1], adaloraBudget(t, schedule).budget, `t = ${t}`);
  // PEFT export keeps exactly the unmasked triplets, with their rank pattern.
  const { config, tensors } = applied.peftExport!();
  const pattern = config.rank_pattern as Record<string, boolean[]>;
  const keptE = pattern["model.layers.0.self_attn.q_proj.lora_E"].filter(Boolean).length;
  assert.deepEqual(tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A")!.shape, [
    keptE,
    TINY_CONFIG.dim,
  ]);
  assert.deepEqual(tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_E")!.shape, [keptE, 1]);
  applied.dispose();
});

Deno.test("adalora: the orthogonality regularizer vanishes for orthonormal P and Q", () => {
  const { model, applied } = applyTiny(adalora, { ...OPTS, orthReg: 0.5 });
  assert.ok(applied.regularizer!().dataSync()[0] > 1);
  const r = OPTS.initR;
  for (const name of ["layers.0.attn.q", "layers.0.attn.v", "layers.1.attn.q", "layers.1.attn.v"]) {
    const l = model.linear(name) as AdaloraLinear;
    l.a.assign(tf.slice(tf.eye(TINY_CONFIG.dim), [0, 0], [r, l.inFeatures]));
    l.b.assign(tf.slice(tf.eye(l.outFeatures, TINY_CONFIG.dim), [0, 0], [l.outFeatures, r]));
  }
  assert.ok(Math.abs(applied.regularizer!().dataSync()[0]) < 1e-6);
  // PEFT's penalty (AdaLoraModel.forward): unsquared ||.||_F averaged over the 8 matrices (P and Q
  // of 4 layers). One P off by P^T P = 4 I: ||3 I||_F = 3 sqrt(r), over 8, times 0.5.
  const l = model.linear("layers.0.attn.q") as AdaloraLinear;
  l.b.assign(tf.mul(l.b, 2));
  assert.ok(Math.abs(applied.regularizer!().dataSync()[0] - 0.5 * 3 * Math.sqrt(r) / 8) < 1e-5);
  // At orthonormal factors its gradient is zero, not NaN (torch.norm's subgradient).
  l.b.assign(tf.div(l.b, 2));
  const { value, grads } = tf.variableGrads(() => applied.regularizer!(), applied.trainable);
  assert.ok(value.dataSync()[0] < 1e-6);
  for (const g of Object.values(grads)) {
    assert.ok(g.dataSync().every((x) => x === 0), "non-zero or NaN gradient");
  }
  tf.dispose([value, ...Object.values(grads)]);
  // PEFT's weight and the project's (documented) schedule defaults, visible in the parsed options.
  const d = parseMethodConfig(adalora, {});
  assert.deepEqual([d.orthReg, d.tinitFraction, d.tfinalFraction], [0.5, 0.1, 0.2]);
  applied.dispose();
});

Deno.test("adalora: state round trip; bad budgets are clear errors", () => {
  assertStateRoundTrip(adalora, OPTS);
  const model = tinyModel();
  assert.throws(
    () =>
      adalora.apply(model, parseMethodConfig(adalora, { initR: 4, targetR: 6 }), plainContext(new Rng(1))),
    /--opt targetR=6 exceeds --opt initR=4/,
  );
  assert.throws(
    () => adalora.apply(model, parseMethodConfig(adalora, { initR: 12 }), plainContext(new Rng(1))),
    /--opt initR=12 is impossible for layers.0.attn.v/,
  );
  assert.throws(
    () =>
      adalora.apply(
        model,
        parseMethodConfig(adalora, { ...OPTS, tinit: 10, tfinal: 10 }),
        plainContext(new Rng(1), 20),
      ),
    /tinit < total steps - tfinal/,
  );
});
