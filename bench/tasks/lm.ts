/**
 * `lm`: causal language modelling. Training texts are packed (`BOS text EOS` concatenated) into
 * rows of `maxLength` tokens; test texts are scored whole in rolling windows of the model's
 * context. Metrics as lm-evaluation-harness defines them: token perplexity, byte perplexity and
 * bits per byte; per-document NLL in the record. Trivial baseline: the add-one unigram model fitted
 * on the training texts' tokens (bench/metrics/unigram.ts), over the same test tokens.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../../models/llama.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import type { LmDataset } from "../../datasets/types.ts";
import { scoreText } from "./lm_score.ts";
import {
  bitsPerByte,
  bytePerplexity,
  tokenPerplexity,
  utf8Length,
  wordCount,
  wordPerplexity,
} from "../metrics/lm.ts";
import type { Evaluation, TaskRunner } from "./types.ts";
import { taskPrimary } from "../metrics/table.ts";
import { UnigramModel } from "../metrics/unigram.ts";
import { CoverageBySplit } from "./coverage.ts";

/** Options of the LM task. */
export interface LmOptions {
  maxLength: number;
}

/** Build the language-modelling task on a model. */
export function lmTask(
  model: LlamaModel,
  tokenizer: Tokenizer,
  data: LmDataset,
  options: LmOptions,
): TaskRunner {
  const rowLen = Math.min(options.maxLength, model.config.maxSeqLen) + 1;
  const stream: number[] = [];
  // Training texts are packed, never cut (no truncation count); the unigram baseline counts their
  // tokens (not the BOS/EOS the packing adds: the test scores text tokens only).
  const coverage = new CoverageBySplit(tokenizer);
  const unigram = new UnigramModel(tokenizer.vocabSize);
  for (const ex of data.train) {
    if (tokenizer.bosId !== null) stream.push(tokenizer.bosId);
    const ids = tokenizer.encode(ex.text);
    coverage.split("train", null).add(ex.text, ids);
    unigram.fit(ids);
    for (const id of ids) stream.push(id); // no spread: long texts exceed the argument limit
    if (tokenizer.eosId !== null) stream.push(tokenizer.eosId);
  }
  const rows = Math.floor(stream.length / rowLen);
  if (rows === 0) {
    throw new Error(`dataset ${data.name}: training text shorter than one row of ${rowLen} tokens`);
  }
  const row = (i: number) => stream.slice(i * rowLen, (i + 1) * rowLen);
  return {
    ...taskPrimary("lm"),
    headVariables: [],
    trainItems: rows,
    testItems: data.test.length,
    loss: (items) =>
      tf.tidy(() => model.lmLoss(tf.tensor2d(items.flatMap(row), [items.length, rowLen], "int32")).loss),
    batchTokens: (items) => items.length * (rowLen - 1),
    trainSequences: (items) => items.map((i) => row(i).slice(0, rowLen - 1)),
    async evaluate(split, maxItems): Promise<Evaluation> {
      if (split === "dev") split = "test"; // LM datasets have no dev split: evaluate on held-out text
      const docs = data.test.slice(0, maxItems ?? undefined);
      let nll = 0;
      let tokens = 0;
      let bytes = 0;
      let words = 0;
      const perItem: Record<string, unknown>[] = [];
      const testCoverage = coverage.reset("test", null); // the documents this evaluation scores
      for (const d of docs) {
        const ids = tokenizer.encode(d.text);
        testCoverage.add(d.text, ids);
        const s = await scoreText(model, tokenizer, d.text, 16, ids);
        nll += s.nll;
        tokens += s.tokens;
        bytes += s.bytes;
        words += wordCount(d.text);
        perItem.push({
          id: d.id,
          nll: s.nll,
          tokens: s.tokens,
          bytes: s.bytes,
          perplexity: Math.exp(s.nll / s.tokens),
        });
      }
      return {
        metrics: {
          perplexity: tokenPerplexity(nll, tokens),
          bytePerplexity: bytePerplexity(nll, bytes),
          bitsPerByte: bitsPerByte(nll, bytes),
          wordPerplexity: wordPerplexity(nll, words),
          meanNll: nll / tokens,
        },
        perItem,
        details: { tokens, bytes, words, documents: docs.length },
        tokens, // the predicted tokens; windows after the first re-read up to a window of context
      };
    },
    trivialBaselines(maxItems) {
      // The test documents evaluate() scores, every token of each (rolling windows predict them all).
      const docs = data.test.slice(0, maxItems ?? undefined);
      let nll = 0, tokens = 0, bytes = 0, words = 0;
      for (const d of docs) {
        const ids = tokenizer.encode(d.text);
        words += wordCount(d.text); // counted for every document, as evaluate() counts them
        if (ids.length === 0) continue; // scoreText scores nothing of an empty text (0 bytes)
        nll += unigram.nll(ids);
        tokens += ids.length;
        bytes += utf8Length(d.text);
      }
      if (tokens === 0) return [];
      return [{
        name: "unigram",
        metrics: {
          perplexity: tokenPerplexity(nll, tokens),
          bytePerplexity: bytePerplexity(nll, bytes),
          bitsPerByte: bitsPerByte(nll, bytes),
          wordPerplexity: wordPerplexity(nll, words),
          meanNll: nll / tokens,
        },
        note: `add-one unigram over the tokenizer's ${tokenizer.vocabSize} ids, fitted on ${unigram.total} ` +
          `training tokens`,
      }];
    },
    tokenizerCoverage: () => coverage.result(),
    sampleSequences: (n) =>
      data.test.slice(0, n).map((d) =>
        tokenizer.encode(d.text, { bos: true }).slice(0, model.config.maxSeqLen)
      ),
    async inferOne(index) {
      const d = data.test[index % data.test.length];
      const ids = tokenizer.encode(d.text, { bos: true }).slice(0, model.config.maxSeqLen);
      const input = tf.tensor2d([ids], [1, ids.length], "int32");
      const h = model.hidden(input);
      await h.data();
      tf.dispose([input, h]);
    },
    dispose: () => {},
  };
}
