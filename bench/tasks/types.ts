/**
 * The task contract: a task owns its data encoding, head, loss and evaluation; the harness owns
 * the training loop and measurement.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { TokenizerCoverage } from "./coverage.ts";

/** The outcome of an evaluation. */
export interface Evaluation {
  metrics: Record<string, number>;
  perItem: Record<string, unknown>[];
  details?: Record<string, unknown>;
  /** Tokens the model read to score the items (inputs of every forward pass, padding excluded). */
  tokens: number;
}

/** A trivial baseline scored by the task on the run's evaluation items, with the task's measures. */
export interface TrivialBaseline {
  /** `bm25`, `random`, `unigram`. */
  name: string;
  metrics: Record<string, number>;
  /** How it was computed (parameters, expectation rather than a draw). */
  note?: string;
}

/** A task bound to a model, a dataset and its options. */
export interface TaskRunner {
  /** Metric that decides quality ("accuracy", "mrr", "perplexity"), from bench/metrics/table.ts. */
  readonly primaryMetric: string;
  /** Whether larger values of the primary metric are better, from bench/metrics/table.ts. */
  readonly higherIsBetter: boolean;
  /** Task-specific trainable variables (classification head); trained with the head learning rate. */
  readonly headVariables: tf.Variable[];
  /** Training items per epoch. */
  readonly trainItems: number;
  /** Loss of a batch of training items (by index), computed inside the gradient tape. */
  loss(items: number[]): tf.Scalar;
  /** Tokens processed by a training batch (for tokens/s). */
  batchTokens(items: number[]): number;
  /** Evaluate on a split, at most `maxItems` items (all when null). */
  evaluate(split: "dev" | "test", maxItems: number | null): Promise<Evaluation>;
  /** Run inference on one test item (for per-item latency); returns after the result is read. */
  inferOne(index: number): Promise<void>;
  /** Number of test items available to inferOne. */
  readonly testItems: number;
  /**
   * Token ids (as the model sees them, truncated like the task truncates) of the first `n` test
   * items, for diagnostics that probe the model on real text (attention entropy).
   */
  sampleSequences?(n: number): number[][];
  /**
   * Token ids of the given training items as the model sees them (a retrieval pair gives its query
   * and its positive document), for calibrating quantization schemes that need activations (GPTQ).
   */
  trainSequences(items: readonly number[]): number[][];
  /**
   * Trivial baselines on the test split's first `maxItems` items (those `evaluate("test", maxItems)`
   * scores), with the task's measures; optional (classification's majority class comes from the
   * record's per-item labels). Written to the run record's `trivial` field.
   */
  trivialBaselines?(maxItems: number | null): TrivialBaseline[];
  /**
   * Tokenizer coverage per split, from the texts the task has tokenized so far (call it after
   * evaluation). Written to the run record's `tokenizerCoverage` field.
   */
  tokenizerCoverage?(): TokenizerCoverage;
  /** Free the task's tensors. */
  dispose(): void;
}
