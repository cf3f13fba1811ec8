/**
 * Log-likelihood of token sequences under a model: long texts are scored in rolling windows of the
 * model's context, at most {@link MAX_SCORING_WINDOW} tokens (lm-evaluation-harness's rule,
 * `bench/metrics/lm.ts`), windows batched with right padding, as many per batch as keep the logits
 * under {@link SCORING_LOGITS_BYTES}.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../../models/llama.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import { rollingTokenWindows, type TokenWindow, utf8Length } from "../metrics/lm.ts";

/**
 * Longest scoring window: a real model's context (40,960 tokens for Qwen3) would need gigabytes of
 * attention scores and logits in one forward pass, past the wasm heap.
 */
export const MAX_SCORING_WINDOW = 512;

/** Bytes of float32 logits one scoring batch may hold (windows x width x vocabulary x 4). */
export const SCORING_LOGITS_BYTES = 512 * 2 ** 20;

/** The rolling-window length texts are scored in under `model`: its context, at most {@link MAX_SCORING_WINDOW}. */
export function scoringWindow(model: LlamaModel): number {
  return Math.min(model.config.maxSeqLen, MAX_SCORING_WINDOW);
}

/** Summed negative log-likelihood (nats) and the number of predicted tokens. */
export interface NllSum {
  nll: number;
  tokens: number;
}

/**
 * Sum of next-token NLL over windows: window `input` followed by its last target forms one
 * sequence whose predictions from position `scoreFrom` on are the window's targets. Up to
 * `batchSize` windows per forward pass, fewer when their logits would pass {@link SCORING_LOGITS_BYTES}.
 */
export async function scoreWindows(
  model: LlamaModel,
  windows: TokenWindow<number>[],
  batchSize = 8,
): Promise<NllSum> {
  let nll = 0;
  let tokens = 0;
  const pad = model.config.padId ?? 0;
  const longest = Math.max(0, ...windows.map((w) => w.input.length + 1));
  const fits = Math.floor(SCORING_LOGITS_BYTES / (4 * longest * model.config.vocabSize));
  const batch = Math.max(1, Math.min(batchSize, fits));
  for (let start = 0; start < windows.length; start += batch) {
    const group = windows.slice(start, start + batch);
    const seqs = group.map((w) => [...w.input, w.target[w.target.length - 1]]);
    const width = Math.max(...seqs.map((s) => s.length));
    const ids = seqs.flatMap((s) => [...s, ...new Array(width - s.length).fill(pad)]);
    const mask = seqs.flatMap((
      s,
    ) => [...new Array(s.length).fill(1), ...new Array(width - s.length).fill(0)]);
    const weights = group.flatMap((w, i) =>
      Array.from({ length: width - 1 }, (_, j) => (j >= w.scoreFrom && j < seqs[i].length - 1 ? 1 : 0))
    );
    const sum = tf.tidy(() => {
      const { perToken } = model.lmLoss(tf.tensor2d(ids, [group.length, width], "int32"), {
        attentionMask: tf.tensor2d(mask, [group.length, width], "int32"),
      });
      return tf.sum(tf.mul(perToken, tf.tensor2d(weights, [group.length, width - 1])));
    });
    nll += (await sum.data())[0];
    sum.dispose();
    tokens += group.reduce((s, w) => s + w.target.length, 0);
  }
  return { nll, tokens };
}

/**
 * NLL of a whole text (BOS as the prefix token when the tokenizer has one), with its byte count;
 * `ids` are the text's tokens when the caller has already encoded it (`tokenizer.encode(text)`).
 */
export async function scoreText(
  model: LlamaModel,
  tokenizer: Tokenizer,
  text: string,
  batchSize = 8,
  ids: number[] = tokenizer.encode(text),
): Promise<NllSum & { bytes: number }> {
  if (ids.length === 0) return { nll: 0, tokens: 0, bytes: 0 };
  const prefix = tokenizer.bosId ?? tokenizer.eosId ?? ids[0];
  const windows = rollingTokenWindows(ids, prefix, scoringWindow(model), 1);
  return { ...(await scoreWindows(model, windows, batchSize)), bytes: utf8Length(text) };
}
