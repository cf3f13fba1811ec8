/**
 * Assertions shared by the tests of the adapter, prompt, prefix, intrinsic-dimension and GaLore
 * methods: identity at init, training with a frozen backbone, and the state round trip.
 * @module
 */
import assert from "node:assert/strict";
import { Rng } from "../models/util/rng.ts";
import type { LlamaModel } from "../models/llama.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, tinyBatch, tinyModel, trainSteps } from "./tiny_test_utils.ts";
import type { AppliedMethod, MethodDefinition } from "./types.ts";

/** Apply a method with options to a fresh tiny model. */
export function applyTiny<C>(
  method: MethodDefinition<C>,
  options: Record<string, unknown>,
  seed = 1,
): { model: LlamaModel; applied: AppliedMethod } {
  const model = tinyModel();
  const applied = method.apply(model, parseMethodConfig(method, options), plainContext(new Rng(seed)));
  return { model, applied };
}

/** The method leaves the frozen model's logits unchanged at init (within 1e-6). */
export function assertIdentityAtInit<C>(method: MethodDefinition<C>, options: Record<string, unknown>): void {
  const before = logitsOf(tinyModel(), tinyBatch());
  const { model, applied } = applyTiny(method, options);
  const diff = maxAbsDiff(before, logitsOf(model, tinyBatch()));
  assert.ok(diff < 1e-6, `${method.name} changed the function at init by ${diff}`);
  applied.dispose();
}

/**
 * Train `steps` steps: the loss falls, stays finite, and every base parameter of the model keeps
 * its value (only the method's own variables moved). Returns the losses.
 */
export function assertTrainsFrozenBase(
  model: LlamaModel,
  applied: AppliedMethod,
  steps = 5,
  lr = 1e-2,
): number[] {
  const snapshot = new Map([...model.params].map(([n, v]) => [n, v.dataSync().slice()]));
  const losses = trainSteps(model, applied, steps, lr);
  assert.ok(losses.every(Number.isFinite), `non-finite loss: ${losses}`);
  assert.ok(losses[steps - 1] < losses[0], `loss did not fall: ${losses}`);
  for (const v of applied.trainable) {
    assert.ok(!v.dataSync().some(Number.isNaN), "NaN in a trainable variable");
  }
  for (const [name, data] of snapshot) {
    assert.deepEqual(model.param(name).dataSync(), data, `frozen parameter ${name} changed`);
  }
  return losses;
}

/** state() of a trained application loads into a fresh one (other seed) and gives the same logits. */
export function assertStateRoundTrip<C>(method: MethodDefinition<C>, options: Record<string, unknown>): void {
  const a = applyTiny(method, options, 1);
  trainSteps(a.model, a.applied, 3);
  const b = applyTiny(method, options, 99);
  b.applied.loadState(a.applied.state());
  const diff = maxAbsDiff(logitsOf(a.model, tinyBatch()), logitsOf(b.model, tinyBatch()));
  assert.ok(diff < 1e-6, `state round trip differs by ${diff}`);
  a.applied.dispose();
  b.applied.dispose();
}

/** Total number of trainable values. */
export function trainableCount(applied: AppliedMethod): number {
  return applied.trainable.reduce((s, v) => s + v.size, 0);
}
