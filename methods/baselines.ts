/**
 * Baselines: `frozen` (no adaptation; for classification and retrieval only the task head trains)
 * and `full` (every base parameter trains; the embedding table too).
 * @module
 */
import { z } from "zod";
import * as tf from "@tensorflow/tfjs-core";
import type { MethodDefinition } from "./types.ts";
import { countParameters } from "../models/config.ts";
import { inPlaceMethod } from "./common.ts";

const noOptions = z.object({}).strict();

/** No adaptation at all. */
export const frozen: MethodDefinition<z.infer<typeof noOptions>> = {
  name: "frozen",
  description: "no adaptation: the backbone stays as pretrained (only a task head trains)",
  schema: noOptions,
  mergeable: true,
  contract: { testOptions: {}, identityAtInit: true, parameterCount: () => 0 },
  apply: () => ({
    trainable: [],
    merge: () => {},
    state: () => new Map(),
    loadState: () => {},
    dispose: () => {},
  }),
};

/** Full fine-tuning of every base parameter. */
export const full: MethodDefinition<z.infer<typeof noOptions>> = {
  name: "full",
  description: "full fine-tuning: every backbone parameter trains",
  schema: noOptions,
  mergeable: true,
  // Every parameter of the architecture (the embedding once when tied).
  contract: { testOptions: {}, identityAtInit: true, parameterCount: (m) => countParameters(m) },
  apply: (model) => {
    if (model.storedWeights.size > 0) {
      throw new Error(
        `full fine-tuning trains every weight, but ${model.storedWeights.size} of this model's weights are ` +
          "stored off the wasm heap as frozen (models above 1 GiB on native); use a PEFT method such as --method lora",
      );
    }
    const originals = new Map([...model.params].map(([n, v]) => [n, tf.clone(v)]));
    return inPlaceMethod(model.params, {
      deltaWeights: () => {
        const out = new Map<string, tf.Tensor2D>();
        for (const [name, layer] of model.linears) {
          const orig = originals.get(`${name}.weight`);
          if (orig) out.set(name, tf.sub(layer.denseWeight(), orig) as tf.Tensor2D);
        }
        return out;
      },
      dispose: () => {
        for (const o of originals.values()) o.dispose();
      },
    });
  },
};
