/**
 * Bottleneck adapters (Houlsby et al., 2019, "Parameter-Efficient Transfer Learning for NLP").
 *
 * Formula: after the attention sublayer and after the MLP sublayer of every decoder layer (on the
 * sublayer's output, before the residual add; `model.hooks.sublayerOutput`),
 * out -> out + W_up act(W_down out + b_down) + b_up, with W_down [b, d], W_up [d, b], bottleneck
 * b (`bottleneck`, default 16) and act GELU (tanh approximation, as the adapter-BERT code) or ReLU
 * (`activation`).
 *
 * Initialisation: W_down Kaiming-uniform (as PyTorch's nn.Linear and LoRA's A), b_down = 0, and
 * W_up = 0, b_up = 0, so each adapter is exactly the identity at init (the paper's near-identity
 * init draws both projections from N(0, 1e-2^2); a zero up-projection makes it exact while the
 * down-projection still passes gradients to W_up from the first step).
 *
 * Design choices: the paper also trains the layer norms; here only the adapters train (norm tuning
 * is a separate method), so the count is the adapters' alone. Both adapters of a layer are separate.
 *
 * Trainable parameters: per decoder layer 2 (2 d b + b + d); total L * 2 (2 d b + b + d).
 * Not mergeable: the nonlinearity keeps the adapter out of the linear weights.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import { kaimingUniform, ownedVariablesMethod, trainableVariable } from "./common.ts";
import {
  adapterSlots,
  affine,
  assertHookFree,
  type BottleneckAdapter,
  bottleneckOptions,
  installAdapters,
} from "./bottleneck.ts";

/** Houlsby adapter options. */
export const houlsbySchema = z.object(bottleneckOptions).strict();

/** Houlsby options after defaults. */
export type HoulsbyConfig = z.infer<typeof houlsbySchema>;

/** Houlsby bottleneck adapters after attention and MLP. */
export const houlsby: MethodDefinition<HoulsbyConfig> = {
  name: "houlsby",
  description: "bottleneck adapters out + up(act(down(out))) after attention and MLP (Houlsby et al. 2019)",
  schema: houlsbySchema,
  mergeable: false,
  // Per decoder layer two adapters of W_down [b, d], b_down [b], W_up [d, b], b_up [d].
  contract: {
    testOptions: { bottleneck: 4 },
    identityAtInit: true,
    parameterCount: (m, c) => m.nLayers * 2 * (2 * m.dim * c.bottleneck + c.bottleneck + m.dim),
  },
  apply: (model, config, ctx) => {
    assertHookFree(model, "sublayerOutput", "houlsby");
    const d = model.config.dim;
    const b = config.bottleneck;
    const vars = new Map<string, tf.Variable>();
    const adapters = new Map<string, BottleneckAdapter>();
    for (const { key } of adapterSlots(model)) {
      const down = trainableVariable(kaimingUniform(ctx.rng.fork(`${key}.down`), [b, d]), [b, d]);
      const downBias = trainableVariable(new Float32Array(b), [b]);
      const up = trainableVariable(new Float32Array(d * b), [d, b]);
      const upBias = trainableVariable(new Float32Array(d), [d]);
      vars.set(`${key}.down.weight`, down);
      vars.set(`${key}.down.bias`, downBias);
      vars.set(`${key}.up.weight`, up);
      vars.set(`${key}.up.bias`, upBias);
      adapters.set(key, {
        down: (x) => affine(x, down as tf.Variable<tf.Rank.R2>, downBias),
        up: (h) => affine(h, up as tf.Variable<tf.Rank.R2>, upBias),
      });
    }
    const restore = installAdapters(model, adapters, config.activation, "houlsby");
    return ownedVariablesMethod(vars, restore, { nominalRank: b });
  },
};
