/**
 * Helpers for method tests: a tiny random model, its logits, and a few training steps.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { AdamW } from "./optim.ts";
import type { AppliedMethod } from "./types.ts";

/** A tiny Llama config (dim 16, 2 layers, 4 heads / 2 KV heads, SwiGLU 24, vocab 32). */
export const TINY_CONFIG = validateConfig({
  dim: 16,
  hiddenDim: 24,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 32,
  maxSeqLen: 32,
  tiedEmbeddings: true,
});

/** A seeded tiny random model. */
export function tinyModel(seed = 1): LlamaModel {
  return LlamaModel.random(TINY_CONFIG, new Rng(seed), 0.2);
}

/** A fixed batch of token ids [2, 8]. */
export function tinyBatch(): tf.Tensor2D {
  return tf.tensor2d([[1, 5, 9, 3, 7, 2, 30, 11], [4, 4, 8, 15, 16, 23, 1, 0]], [2, 8], "int32");
}

/** Logits [B*T, vocab] of the model on ids, as a flat array. */
export function logitsOf(model: LlamaModel, ids: tf.Tensor2D): Float32Array {
  return tf.tidy(() => {
    const h = model.hidden(ids);
    return model.logits(tf.reshape(h, [-1, model.config.dim]) as tf.Tensor2D).dataSync() as Float32Array;
  });
}

/** Largest absolute difference of two arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Run `steps` AdamW updates of the LM loss (plus the method's regularizer) on the tiny batch and
 * return the losses; calls the method's afterStep hook like the harness does.
 */
export function trainSteps(model: LlamaModel, method: AppliedMethod, steps: number, lr = 1e-2): number[] {
  const ids = tinyBatch();
  const vars = method.trainable;
  const optimizer = method.makeOptimizer?.({}) ?? new AdamW(vars);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const { value, grads } = tf.variableGrads(() => {
      const loss = model.lmLoss(ids).loss;
      return method.regularizer ? tf.add(loss, method.regularizer()) as tf.Scalar : loss;
    }, vars);
    const list = vars.map((v) => grads[v.name]);
    optimizer.apply(list, lr).dispose();
    method.afterStep?.(new Map(vars.map((v, i) => [v, list[i]])), step);
    losses.push(value.dataSync()[0]);
    tf.dispose([value, ...list]);
  }
  optimizer.dispose();
  ids.dispose();
  return losses;
}
