/**
 * Trainable tokens (Hugging Face PEFT `TrainableTokensConfig` / `TrainableTokensLayer`): the
 * embedding rows of a few selected tokens train, the rest of the table stays frozen.
 *
 * Formula: with selected distinct ids t_1..t_k (`tokenIndices`, PEFT's `token_indices`) and a
 * trainable matrix D [k, dim], the model uses the table E' with E'[t_j] = D[j] and E'[v] = E[v]
 * otherwise. As PEFT (`index_copy`), the rows are replaced, not added to: the embedding gather
 * reads D's row for a selected token (`model.hooks.embeddingOverride`, substituted after the gather,
 * so a table stored off the wasm heap works too), and a tied output head uses the same rows, logit
 * column t_j = h . D[j] (PEFT wraps a tied `lm_head` in a `TrainableTokensLayer` tied to the
 * embedding's adapter, sharing its `trainable_tokens_delta`). An untied head is left alone, as PEFT
 * only wraps the input embedding by default.
 *
 * Initialisation (PEFT `init_weights`): true (default) copies the selected rows, D = E[t], so the
 * method is the identity at init; false draws D ~ N(0, 1) (PEFT's `torch.randn`) from
 * ctx.rng.fork("trainable-tokens.init").
 *
 * Trainable parameters: k dim. Mergeable: `merge()` writes D into the table's rows (PEFT's merge),
 * for a table on the heap; a table stored off the heap cannot be rewritten and is refused.
 *
 * PEFT's default `token_indices` is the empty list, which trains nothing; this method needs the ids
 * (`--opt tokenIndices=5,17,42`) and refuses an empty list.
 * PEFT export: `adapter_config.json` with `peft_type: TRAINABLE_TOKENS`, `token_indices`,
 * `target_modules: ["embed_tokens"]`, and the one tensor
 * `base_model.model.model.embed_tokens.trainable_tokens_delta` [k, dim] (the tied head's adapter is
 * not saved: PEFT keeps it out of the state dict). Embedding rows are not permuted by the Hugging
 * Face checkpoint writer, so D is written as is.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { AppliedMethod, MethodDefinition } from "./types.ts";
import { ownedVariablesMethod, trainableVariable } from "./common.ts";
import { setHook } from "./bottleneck.ts";
import { overrideEmbeddings } from "../models/embedding_override.ts";

/** `tokenIndices` as given: a list, one id, or `--opt tokenIndices=5,17,42` (a comma-separated string). */
function tokenList(v: unknown): unknown {
  if (typeof v === "number") return [v];
  if (typeof v === "string") return v.split(",").map((s) => s.trim() === "" ? NaN : Number(s));
  return v;
}

/** Trainable-tokens options. */
export const trainableTokensSchema = z.object({
  /** Token ids whose embedding rows train (PEFT `token_indices`), distinct; at least one. */
  tokenIndices: z.preprocess(
    tokenList,
    z.array(z.number().int().nonnegative()).min(
      1,
      "give the token ids whose rows train, e.g. --opt tokenIndices=5,17,42",
    ).refine((a) => new Set(a).size === a.length, "token ids must be distinct"),
  ),
  /** PEFT `init_weights`: true copies the selected rows (identity at init), false draws N(0, 1). */
  initWeights: z.boolean().default(true),
}).strict();

/** Trainable-tokens options after defaults. */
export type TrainableTokensConfig = z.infer<typeof trainableTokensSchema>;

/** Trainable tokens: selected embedding rows train; a tied head shares them. */
export const trainableTokens: MethodDefinition<TrainableTokensConfig> = {
  name: "trainable-tokens",
  description:
    "only the embedding rows of selected token ids train; a tied head shares them (PEFT trainable tokens)",
  schema: trainableTokensSchema,
  mergeable: true,
  contract: {
    testOptions: { tokenIndices: [1, 4, 9, 30] },
    identityAtInit: true,
    // D [k, dim].
    parameterCount: (m, c) => c.tokenIndices.length * m.dim,
    peftTensors: (m, c) =>
      new Map([["model.model.embed_tokens.trainable_tokens_delta", [c.tokenIndices.length, m.dim]]]),
  },
  apply: (model, config, ctx): AppliedMethod => {
    const { dim, vocabSize } = model.config;
    const ids = config.tokenIndices;
    const bad = ids.find((t) => t >= vocabSize);
    if (bad !== undefined) {
      throw new Error(
        `trainable-tokens: token id ${bad} is outside the vocabulary (${vocabSize} tokens); fix --opt tokenIndices`,
      );
    }
    const k = ids.length;
    const init = config.initWeights
      ? model.embeddingRows(ids)
      : ctx.rng.fork("trainable-tokens.init").normalArray(k * dim, 1);
    const delta = trainableVariable(init, [k, dim]);
    const idTensor = tf.keep(tf.tensor1d(ids, "int32"));
    const vars = new Map([["trainable_tokens_delta", delta]]);
    const restore = setHook(
      model,
      "embeddingOverride",
      () => ({ ids: idTensor, rows: delta as tf.Tensor2D }),
      "trainable-tokens",
    );
    return ownedVariablesMethod(vars, () => {
      restore();
      idTensor.dispose();
    }, {
      merge: () => {
        if (model.storedWeights.has("embed.weight")) {
          throw new Error(
            "trainable-tokens: cannot merge into an embedding table stored off the wasm heap; keep the method applied",
          );
        }
        const table = model.param("embed.weight");
        tf.tidy(() => {
          const all = tf.range(0, vocabSize, 1, "int32") as tf.Tensor1D;
          table.assign(
            overrideEmbeddings(table as tf.Tensor2D, all, { ids: idTensor, rows: delta as tf.Tensor2D }),
          );
        });
        restore();
      },
      peftExport: () => ({
        config: {
          peft_type: "TRAINABLE_TOKENS",
          task_type: "CAUSAL_LM",
          token_indices: [...ids],
          target_modules: ["embed_tokens"],
          init_weights: config.initWeights,
          base_model_name_or_path: null,
        },
        tensors: new Map([[
          "base_model.model.model.embed_tokens.trainable_tokens_delta",
          { data: delta.dataSync() as Float32Array, shape: [k, dim] },
        ]]),
      }),
    });
  },
};
