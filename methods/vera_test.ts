import assert from "node:assert/strict";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { vera, veraKaimingUniform, VeraLinear } from "./vera.ts";
import { applyTiny, assertStateRoundTrip, trainableCount } from "./method_checks_test_utils.ts";
import { TINY_CONFIG } from "./tiny_test_utils.ts";

import { assertIdentityTrainsMerges } from "./lora_variants_test_utils.ts";

await initBackend("cpu");

const OPTS = { rank: 32, targets: "q+v" };

/**
 * Samples look like U(-sqrt(6/fanIn), sqrt(6/fanIn)): all within the bound, the largest within 5% of
 * it, and variance 2/fanIn within relative tolerance `tol`.
 */
function assertUniform(xs: Float32Array, fanIn: number, tol: number): void {
  const bound = Math.sqrt(6 / fanIn);
  const maxAbs = xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  assert.ok(maxAbs <= bound * (1 + 1e-6), `max |x| ${maxAbs} > bound ${bound}`);
  assert.ok(maxAbs >= 0.95 * bound, `max |x| ${maxAbs} far below bound ${bound}`);
  const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
  assert.ok(Math.abs(variance / (2 / fanIn) - 1) < tol, `variance ${variance}, expected ${2 / fanIn}`);
}

Deno.test("vera: projections follow PEFT's _kaiming_init, bound sqrt(6/fan_in), variance 2/fan_in", () => {
  // 64000 samples: the sample variance of a uniform is within ~0.4% (1 sd) of 2/fan_in.
  for (const fanIn of [16, 256, 1000]) {
    assertUniform(veraKaimingUniform(new Rng(7), [64000 / fanIn, fanIn]), fanIn, 0.02);
  }
  // fan_in is the second dimension (torch's [out, in]): [r, in] -> in, [out, r] -> r.
  const tall = veraKaimingUniform(new Rng(3), [4000, 4]);
  assert.ok(Math.max(...tall.map(Math.abs)) > Math.sqrt(6 / 4) * 0.99);
});

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
  // PEFT's _kaiming_init bounds sqrt(6 / fan_in): fan_in = in for A [r, in], r for B [out, r].
  assertUniform(q0.a.dataSync() as Float32Array, TINY_CONFIG.dim, 0.15);
  assertUniform(q0.b.dataSync() as Float32Array, OPTS.rank, 0.15);
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
