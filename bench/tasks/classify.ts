/**
 * `classify`: pooled final hidden state -> linear head -> cross-entropy.
 * Metrics: accuracy, macro-F1, per-class F1 and the confusion matrix; per-item predictions.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../../models/variables.ts";
import type { LlamaModel } from "../../models/llama.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import { Rng } from "../../models/util/rng.ts";
import type { ClassificationDataset } from "../../datasets/types.ts";
import { accuracy, confusionMatrix, macroF1, perClassScores } from "../metrics/classification.ts";
import { encodeTexts, lengthBatches, padBatch, pooledEmbedding, type Pooling } from "./encode.ts";
import type { Evaluation, TaskRunner } from "./types.ts";
import { taskPrimary } from "../metrics/table.ts";
import { stratifiedSubset } from "./stratified.ts";
import { CoverageBySplit } from "./coverage.ts";

/** Options of the classification task. */
export interface ClassifyOptions {
  maxLength: number;
  pooling: Pooling;
  evalBatch?: number;
  /**
   * How `--max-eval N` picks items when N is below the split size: "first" (default: the first N
   * in file order, as before) or "stratified" (a seeded stratified sample, bench/tasks/stratified.ts,
   * the same subset for every run so runs stay paired).
   */
  maxEvalMode?: "first" | "stratified";
}

/** Build the classification task on a model. */
export function classifyTask(
  model: LlamaModel,
  tokenizer: Tokenizer,
  data: ClassificationDataset,
  options: ClassifyOptions,
  rng: Rng,
): TaskRunner {
  const labelIndex = new Map(data.labels.map((l, i) => [l, i]));
  for (const split of ["train", "test"] as const) {
    for (const ex of data[split]) {
      if (!labelIndex.has(ex.label)) {
        throw new Error(`${split} example ${ex.id} has unknown label '${ex.label}'`);
      }
    }
  }
  const pad = tokenizer.padId ?? tokenizer.eosId ?? 0;
  // Every split is encoded once, here: its tokenizer coverage is counted on the way.
  const coverage = new CoverageBySplit(tokenizer);
  const encode = (split: "train" | "dev" | "test") =>
    encodeTexts(
      tokenizer,
      data[split].map((e) => e.text),
      options.maxLength,
      coverage.split(split, options.maxLength),
    );
  const enc = { train: encode("train"), dev: encode("dev"), test: encode("test") };
  const classes = data.labels.length;
  const dim = model.config.dim;
  const head = variableOf(
    () => tf.tensor2d(rng.fork("head").normalArray(classes * dim, 0.02), [classes, dim]),
    true,
  );
  const headBias = variableOf(() => tf.zeros([classes]), true);
  const trainLabels = data.train.map((e) => labelIndex.get(e.label)!);
  const logitsOf = (seqs: number[][]) =>
    tf.tidy(() => {
      const batch = padBatch(seqs, pad);
      const pooled = pooledEmbedding(model, batch, options.pooling);
      tf.dispose([batch.ids, batch.mask]);
      return tf.add(tf.matMul(pooled, head, false, true), headBias) as tf.Tensor2D;
    });
  const predict = async (split: "dev" | "test", items: readonly number[]) => {
    const seqs = items.map((i) => enc[split][i]);
    const preds = new Array<number>(items.length);
    for (const idx of lengthBatches(seqs, options.evalBatch ?? 32)) {
      const logits = logitsOf(idx.map((i) => seqs[i]));
      const arg = tf.argMax(logits, 1);
      (await arg.data()).forEach((p, j) => preds[idx[j]] = p);
      tf.dispose([logits, arg]);
    }
    return preds;
  };
  return {
    ...taskPrimary("classify"),
    headVariables: [head, headBias],
    trainItems: data.train.length,
    testItems: data.test.length,
    loss(items) {
      return tf.tidy(() => {
        const logits = logitsOf(items.map((i) => enc.train[i]));
        const targets = tf.cast(
          tf.oneHot(tf.tensor1d(items.map((i) => trainLabels[i]), "int32"), classes),
          "float32",
        );
        return tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1))) as tf.Scalar;
      });
    },
    batchTokens: (items) => items.reduce((s, i) => s + enc.train[i].length, 0),
    async evaluate(split, maxItems): Promise<Evaluation> {
      const all = data[split];
      const items = maxItems !== null && maxItems !== undefined && options.maxEvalMode === "stratified"
        // A fixed stream (not the run's seed): every run of a study scores the same items.
        ? stratifiedSubset(all.map((e) => e.label), maxItems, new Rng(0x5eed).fork(`max-eval|${split}`))
        : all.slice(0, maxItems ?? undefined).map((_, i) => i);
      const examples = items.map((i) => all[i]);
      const preds = await predict(split, items);
      const yTrue = examples.map((e) => e.label);
      const yPred = preds.map((p) => data.labels[p]);
      const perClass = perClassScores(yTrue, yPred, data.labels);
      return {
        metrics: { accuracy: accuracy(yTrue, yPred), macroF1: macroF1(yTrue, yPred, data.labels) },
        perItem: examples.map((e, i) => ({
          id: e.id,
          label: e.label,
          pred: yPred[i],
          correct: yPred[i] === e.label ? 1 : 0,
        })),
        details: { perClass, confusion: confusionMatrix(yTrue, yPred, data.labels) },
        tokens: items.reduce((s, i) => s + enc[split][i].length, 0),
      };
    },
    sampleSequences: (n) => enc.test.slice(0, n).map((s) => s.slice()),
    trainSequences: (items) => items.map((i) => enc.train[i].slice()),
    async inferOne(index) {
      const logits = logitsOf([enc.test[index % enc.test.length]]);
      await logits.data();
      logits.dispose();
    },
    tokenizerCoverage: () => coverage.result(),
    dispose: () => tf.dispose([head, headBias]),
  };
}
