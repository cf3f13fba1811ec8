import assert from "node:assert/strict";
import { initBackend } from "../models/backend.ts";
import { vera, VeraLinear } from "./vera.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks.ts";
import { TINY_CONFIG } from "./testing.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_testing.ts";

await initBackend("cpu");

const OPTS = { rank: 32, targets: "q+v" };

Deno.test("vera: identity at init, trains with a frozen base, merges to the same function", () => {
  assertIdentityTrainsMerges(vera, OPTS);
});

Deno.test("vera: trainable parameters = r + out per adapted layer; d starts at dInitial, b at 0", () => {
  const { applied } = applyTiny(vera, OPTS);
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim;
  assert.equal(trainableCount(applied), c.nLayers * (OPTS.rank + c.dim + OPTS.rank + kv));
  const s = applied.state();
  assert.ok(s.get("layers.0.attn.q.vera_lambda_d")!.data.every((v) => Math.abs(v - 0.1) < 1e-7));
  assert.ok(s.get("layers.0.attn.q.vera_lambda_b")!.data.every((v) => v === 0));
  applied.dispose();
});

Deno.test("vera: A and B are frozen, seeded and shared across layers (slices of one pair)", () => {
  const { model, applied } = applyTiny(vera, OPTS);
  const q0 = model.linear("layers.0.attn.q") as VeraLinear;
  const q1 = model.linear("layers.1.attn.q") as VeraLinear;
  const v0 = model.linear("layers.0.attn.v") as VeraLinear;
  assert.equal(q0.a, q1.a);
  assert.equal(q0.b, q1.b);
  assert.equal(q0.a, v0.a); // same input width
  const kv = TINY_CONFIG.nKvHeads * TINY_CONFIG.headDim;
  assert.deepEqual(v0.b.dataSync(), q0.b.dataSync().slice(0, kv * OPTS.rank)); // leading rows of B
  assert.ok(!q0.a.trainable && !q0.b.trainable);
  assert.ok(!applied.trainable.includes(q0.a));
  // Kaiming-uniform bounds 1/sqrt(fan_in).
  assert.ok(q0.a.dataSync().every((x) => Math.abs(x) <= 1 / Math.sqrt(TINY_CONFIG.dim)));
  assert.ok(q0.b.dataSync().every((x) => Math.abs(x) <= 1 / Math.sqrt(OPTS.rank)));
  // Same seed, same projections.
  const other = applyTiny(vera, OPTS);
  assert.deepEqual((other.model.linear("layers.0.attn.q") as VeraLinear).a.dataSync(), q0.a.dataSync());
  other.applied.dispose();
  applied.dispose();
});

Deno.test("vera: state round trip and PEFT export names", () => {
  assertStateRoundTrip(vera, OPTS);
  const { applied } = applyTiny(vera, OPTS);
  const { config, tensors } = applied.peftExport!();
  assert.equal(config.peft_type, "VERA");
  assert.deepEqual(tensors.get("base_model.vera_A")!.shape, [OPTS.rank, TINY_CONFIG.dim]);
  assert.deepEqual(tensors.get("base_model.vera_B")!.shape, [TINY_CONFIG.dim, OPTS.rank]);
  assert.deepEqual(
    tensors.get("base_model.model.model.layers.1.self_attn.v_proj.vera_lambda_b")!.shape,
    [TINY_CONFIG.nKvHeads * TINY_CONFIG.headDim],
  );
  applied.dispose();
});
