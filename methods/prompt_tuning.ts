/**
 * Prompt tuning (Lester, Al-Rfou & Constant, 2021, "The Power of Scale for Parameter-Efficient
 * Prompt Tuning").
 *
 * Formula: a trainable soft prompt P [p, d] (`virtualTokens` p, default 8) is prepended to every
 * sequence's token embeddings through `model.hooks.promptEmbeddings`: the model runs on
 * [P; E(x)] and the prompt positions are dropped from the outputs, so hidden states, logits and
 * the LM loss keep the real tokens' shape. Real tokens attend to the whole prompt (it precedes them
 * causally); the prompt positions themselves are never scored.
 *
 * Initialisation (`init`), drawn from ctx.rng (`fork("prompt-tuning.init")`):
 * - `sample-vocab` (default; the paper's best init): row j is a copy of the embedding of a
 *   vocabulary token, distinct tokens while p <= vocab. The paper samples from the 5,000 most
 *   frequent tokens; with no frequency table at hand we draw uniformly from the whole vocabulary.
 *   PEFT's `SAMPLE_VOCAB` also draws from the whole vocabulary, with replacement (torch.randint).
 * - `random`: PEFT's default (`PromptTuningInit.RANDOM`): the prompt is a fresh
 *   `torch.nn.Embedding(p, d)`, whose weights are N(0, 1).
 * The default differs from PEFT's on purpose: N(0, 1) rows are far from the scale of a trained
 * embedding table (the paper reports random init trailing sampled vocabulary), so `sample-vocab`
 * stays the default; the option is in the run record, and `--opt init=random` gives PEFT's.
 *
 * Not identity at init (the prompt changes every real token's context). Trainable parameters: p d.
 * Not mergeable: the prompt is an input, not a weight.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import type { Rng } from "../models/util/rng.ts";
import { ownedVariablesMethod, trainableVariable } from "./common.ts";
import { assertHookFree, setHook } from "./bottleneck.ts";

/** Prompt-tuning options. */
export const promptTuningSchema = z.object({
  /** Number p of soft prompt vectors. */
  virtualTokens: z.number().int().positive().default(8),
  /** Prompt initialisation: copies of sampled vocabulary embeddings, or PEFT's default N(0, 1). */
  init: z.enum(["sample-vocab", "random"]).default("sample-vocab"),
}).strict();

/** Prompt-tuning options after defaults. */
export type PromptTuningConfig = z.infer<typeof promptTuningSchema>;

/** Token ids whose embeddings initialise the prompt: distinct while p <= vocab. */
export function samplePromptTokens(rng: Rng, p: number, vocab: number): number[] {
  if (p <= vocab) return rng.shuffle([...Array(vocab).keys()]).slice(0, p);
  return Array.from({ length: p }, () => rng.int(vocab));
}

/** Prompt tuning: a trainable soft prompt prepended to the input embeddings. */
export const promptTuning: MethodDefinition<PromptTuningConfig> = {
  name: "prompt-tuning",
  description: "trainable soft prompt prepended to the input embeddings (Lester et al. 2021)",
  schema: promptTuningSchema,
  mergeable: false,
  defaultLr: 0.05,
  // P [p, d]; the prompt changes every real token's context, so not identity at init.
  contract: {
    testOptions: { virtualTokens: 4 },
    identityAtInit: false,
    parameterCount: (m, c) => c.virtualTokens * m.dim,
  },
  apply: (model, config, ctx) => {
    assertHookFree(model, "promptEmbeddings", "prompt-tuning");
    const { dim, vocabSize } = model.config;
    const rng = ctx.rng.fork("prompt-tuning.init");
    const p = config.virtualTokens;
    const init = config.init === "random"
      ? rng.normalArray(p * dim, 1)
      : model.embeddingRows(samplePromptTokens(rng, p, vocabSize));
    const prompt = trainableVariable(init, [p, dim]);
    const vars = new Map([["prompt_embeddings", prompt]]);
    const restore = setHook(model, "promptEmbeddings", () => prompt as tf.Tensor2D, "prompt-tuning");
    return ownedVariablesMethod(vars, restore);
  },
};
