/**
 * Pieces shared by the hook-based methods (bottleneck adapters, Compacter, prompt and prefix
 * tuning): installing a `model.hooks` entry with a clean restore, the adapter nonlinearity, and
 * running a residual bottleneck adapter on a sublayer's output.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LlamaModel, ModelHooks } from "../models/llama.ts";

/** Options shared by the bottleneck-adapter methods (houlsby, compacter). */
export const bottleneckOptions = {
  /** Bottleneck width b of each adapter (the paper's m). */
  bottleneck: z.number().int().positive().default(16),
  /**
   * Nonlinearity between the down and up projections: `gelu` (tanh approximation, as the original
   * adapter-BERT code) or `relu`.
   */
  activation: z.enum(["gelu", "relu"]).default("gelu"),
};

/** Adapter nonlinearity names. */
export type Activation = "gelu" | "relu";

/** GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh<T extends tf.Tensor>(x: T): T {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
}

/** Apply an adapter nonlinearity. */
export function activate<T extends tf.Tensor>(x: T, kind: Activation): T {
  return kind === "relu" ? tf.relu(x) : geluTanh(x);
}

/** Throw when another method already uses a hook (call before creating variables). */
export function assertHookFree(model: LlamaModel, key: keyof ModelHooks, method: string): void {
  if (model.hooks[key]) {
    throw new Error(`method ${method}: model.hooks.${key} is already used by another method`);
  }
}

/**
 * Set one `model.hooks` entry and return a function that removes it again. A hook already taken by
 * another method is an error (two methods cannot share one soft prompt or one adapter slot).
 */
export function setHook<K extends keyof ModelHooks>(
  model: LlamaModel,
  key: K,
  fn: NonNullable<ModelHooks[K]>,
  method: string,
): () => void {
  assertHookFree(model, key, method);
  model.hooks[key] = fn;
  return () => {
    if (model.hooks[key] === fn) delete model.hooks[key];
  };
}

/** One residual bottleneck adapter: out + up(act(down(out))). */
export interface BottleneckAdapter {
  /** [N, d] -> [N, b]. */
  down(x: tf.Tensor2D): tf.Tensor2D;
  /** [N, b] -> [N, d]. */
  up(h: tf.Tensor2D): tf.Tensor2D;
}

/** The two adapter slots of every decoder layer, in model order. */
export function adapterSlots(model: LlamaModel): { layer: number; kind: "attn" | "mlp"; key: string }[] {
  const slots: { layer: number; kind: "attn" | "mlp"; key: string }[] = [];
  for (let layer = 0; layer < model.config.nLayers; layer++) {
    for (const kind of ["attn", "mlp"] as const) {
      slots.push({ layer, kind, key: `layers.${layer}.${kind}_adapter` });
    }
  }
  return slots;
}

/**
 * Insert adapters after the attention and MLP sublayers through `model.hooks.sublayerOutput`
 * (before the residual add, where Houlsby et al. place them). `adapters` is keyed by
 * {@link adapterSlots}' keys. Returns the restore function.
 */
export function installAdapters(
  model: LlamaModel,
  adapters: Map<string, BottleneckAdapter>,
  activation: Activation,
  method: string,
): () => void {
  return setHook(model, "sublayerOutput", (layer, kind, out) => {
    const a = adapters.get(`layers.${layer}.${kind}_adapter`);
    if (!a) return out;
    return tf.add(out, a.up(activate(a.down(out), activation))) as tf.Tensor2D;
  }, method);
}

/** x W^T + b for W [out, in] (PyTorch layout), b [out]. */
export function affine(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(x, w, false, true), b) as tf.Tensor2D;
}
