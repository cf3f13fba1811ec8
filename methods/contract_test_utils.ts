/**
 * The whole method contract on the tiny model, built on `method_checks_test_utils.ts`: identity at init,
 * training lowers the loss without NaN, base parameters the method does not train stay unchanged,
 * state round trip, and (for mergeable methods) merged forward = adapted forward.
 * @module
 */
import assert from "node:assert/strict";
import type { LlamaModel } from "../models/llama.ts";
import type { AppliedMethod, MethodDefinition } from "./types.ts";
import { applyTiny, assertIdentityAtInit, assertStateRoundTrip } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, tinyBatch, trainSteps } from "./tiny_test_utils.ts";

/**
 * Train `steps` steps: the loss falls and stays finite, and every base parameter not returned as
 * trainable keeps its value (methods like BitFit and LN tuning train some base parameters in place).
 */
export function assertTrainsRestFrozen(model: LlamaModel, applied: AppliedMethod, steps = 5): void {
  const trained = new Set(applied.trainable);
  const frozen = [...model.params].filter(([, v]) => !trained.has(v));
  const snapshot = frozen.map(([, v]) => v.dataSync().slice());
  const losses = trainSteps(model, applied, steps);
  assert.ok(losses.every(Number.isFinite), `non-finite loss: ${losses}`);
  assert.ok(losses[steps - 1] < losses[0], `loss did not fall: ${losses}`);
  for (const v of applied.trainable) {
    assert.ok(v.dataSync().every(Number.isFinite), "NaN in a trainable tensor");
  }
  frozen.forEach(([name, v], i) => assert.deepEqual(v.dataSync(), snapshot[i], `frozen '${name}' changed`));
}

/** After training, merge() leaves the function unchanged (within 1e-5) and training changed it. */
export function assertMergeEquivalent(model: LlamaModel, applied: AppliedMethod, before: Float32Array): void {
  const ids = tinyBatch();
  const adapted = logitsOf(model, ids);
  assert.ok(maxAbsDiff(before, adapted) > 1e-4, "training changed nothing");
  applied.merge!();
  const d = maxAbsDiff(adapted, logitsOf(model, ids));
  assert.ok(d < 1e-5, `merged forward differs by ${d}`);
  ids.dispose();
}

/** Run the whole contract for a method with options; returns the trained (and merged) application. */
export function checkContract<C>(
  method: MethodDefinition<C>,
  options: Record<string, unknown>,
): { model: LlamaModel; applied: AppliedMethod } {
  assertIdentityAtInit(method, options);
  assertStateRoundTrip(method, options);
  const { model, applied } = applyTiny(method, options);
  const before = logitsOf(model, tinyBatch());
  assertTrainsRestFrozen(model, applied);
  if (method.mergeable) assertMergeEquivalent(model, applied, before);
  return { model, applied };
}
