/**
 * Test check shared by the LoRA-variant tests: identity at init, training with a frozen base, and
 * merge equivalence after training.
 * @module
 */
import assert from "node:assert/strict";
import type { MethodDefinition } from "./types.ts";
import { applyTiny, assertTrainsFrozenBase } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

/**
 * The method starts at the frozen model's function (within `identityTol`), trains with the base
 * frozen, and its merged model computes what the adapted one did (within 1e-5).
 */
export function assertIdentityTrainsMerges<C>(
  method: MethodDefinition<C>,
  options: Record<string, unknown>,
  identityTol = 1e-6,
): void {
  const before = logitsOf(tinyModel(), tinyBatch());
  const { model, applied } = applyTiny(method, options);
  const d0 = maxAbsDiff(before, logitsOf(model, tinyBatch()));
  assert.ok(d0 < identityTol, `${method.name} changed the function at init by ${d0}`);
  assertTrainsFrozenBase(model, applied, 5);
  const adapted = logitsOf(model, tinyBatch());
  assert.ok(maxAbsDiff(before, adapted) > 1e-4, `${method.name}: training changed nothing`);
  applied.merge!();
  const d1 = maxAbsDiff(adapted, logitsOf(model, tinyBatch()));
  assert.ok(d1 < 1e-5, `${method.name}: merged forward differs by ${d1}`);
  applied.dispose();
}
