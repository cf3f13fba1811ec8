/**
 * The contract checks every method test runs on the tiny model: identity at init, training lowers
 * the loss without NaN, frozen base parameters stay unchanged, state round trip, merge equivalence.
 * @module
 */
import assert from "node:assert/strict";
import type { LlamaConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/rng.ts";
import type { AppliedMethod, MethodDefinition } from "./types.ts";
import { countValues, plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, trainSteps } from "./testing.ts";

/** What to check beyond the common contract. */
export interface ContractOptions {
  /** The method promises logits equal to the frozen model's at init (default true). */
  identity?: boolean;
  /** Model config (default the tiny one). */
  config?: LlamaConfig;
  /** Training steps before comparing (default 5). */
  steps?: number;
}

/** Apply a method by name-checked options to a fresh tiny model. */
export function applyTo<C>(
  method: MethodDefinition<C>,
  options: Record<string, unknown>,
  seed = 1,
  config: LlamaConfig = TINY_CONFIG,
): { model: LlamaModel; applied: AppliedMethod } {
  const model = LlamaModel.random(config, new Rng(1), 0.2);
  const applied = method.apply(model, parseMethodConfig(method, options), plainContext(new Rng(seed)));
  return { model, applied };
}

/** Trainable values of an applied method. */
export function trainableCount(applied: AppliedMethod): number {
  return countValues(applied.trainable);
}

/** Run the common contract; returns the trained model and method (merged when mergeable). */
export function checkContract<C>(
  method: MethodDefinition<C>,
  options: Record<string, unknown>,
  opts: ContractOptions = {},
): { model: LlamaModel; applied: AppliedMethod } {
  const config = opts.config ?? TINY_CONFIG;
  const ids = tinyBatch();
  const plain = LlamaModel.random(config, new Rng(1), 0.2);
  const before = logitsOf(plain, ids);
  const snapshot = new Map([...plain.params].map(([n, v]) => [n, v.dataSync().slice()]));
  plain.dispose();

  const { model, applied } = applyTo(method, options, 1, config);
  if (opts.identity ?? true) {
    const d = maxAbsDiff(before, logitsOf(model, ids));
    assert.ok(d < 1e-6, `${method.name}: not the identity at init (max diff ${d})`);
  }
  const losses = trainSteps(model, applied, opts.steps ?? 5);
  assert.ok(losses.every(Number.isFinite), `${method.name}: non-finite loss ${losses}`);
  assert.ok(losses[losses.length - 1] < losses[0], `${method.name}: loss did not fall: ${losses}`);
  const trained = new Set(applied.trainable);
  for (const [name, v] of model.params) {
    if (trained.has(v)) continue;
    assert.deepEqual(v.dataSync(), snapshot.get(name), `${method.name}: frozen '${name}' changed`);
  }
  const adapted = logitsOf(model, ids);
  assert.ok(maxAbsDiff(before, adapted) > 1e-4, `${method.name}: training changed nothing`);
  for (const v of applied.trainable) {
    assert.ok(v.dataSync().every(Number.isFinite), `${method.name}: NaN in a trainable tensor`);
  }

  // State round trip into a fresh application with another seed.
  const fresh = applyTo(method, options, 99, config);
  fresh.applied.loadState(applied.state());
  const d2 = maxAbsDiff(adapted, logitsOf(fresh.model, ids));
  assert.ok(d2 < 1e-6, `${method.name}: state round trip differs by ${d2}`);
  fresh.applied.dispose();
  fresh.model.dispose();

  if (method.mergeable) {
    applied.merge!();
    const d3 = maxAbsDiff(adapted, logitsOf(model, ids));
    assert.ok(d3 < 1e-5, `${method.name}: merged forward differs by ${d3}`);
  }
  ids.dispose();
  return { model, applied };
}
