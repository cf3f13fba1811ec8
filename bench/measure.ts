/**
 * The measurement stage of a run: test-split evaluation, per-item inference latency, peak
 * inference memory, and the training memory's breakdown into frozen weights, trainable values,
 * optimizer state and activations.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Evaluation, TaskRunner } from "./tasks/types.ts";
import type { RunRecord } from "./record.ts";

/** Inference latency samples: 3 warm-up items (kernels compiled, caches filled), then up to `count` timed ones, ms. */
export async function measureInference(
  task: Pick<TaskRunner, "inferOne" | "testItems">,
  count: number,
): Promise<number[]> {
  const n = Math.min(count, Math.max(task.testItems, 1));
  for (let i = 0; i < 3; i++) await task.inferOne(i);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await task.inferOne(i);
    times.push(performance.now() - t0);
  }
  return times;
}

/** What {@link evaluateAndMeasure} measured on the trained model. */
export interface Measurement {
  evaluation: Evaluation;
  evalSeconds: number;
  /** 20 inference latency samples (fewer when the test split is smaller), ms. */
  inferTimes: number[];
  /** Peak tensor bytes of one inference (tf.profile). */
  peakInferBytes: number;
}

/** Evaluate on the test split (at most `maxEval` items), then time inference and profile its memory. */
export async function evaluateAndMeasure(task: TaskRunner, maxEval: number | null): Promise<Measurement> {
  const evalStart = performance.now();
  const evaluation = await task.evaluate("test", maxEval);
  const evalSeconds = (performance.now() - evalStart) / 1000;
  const inferTimes = await measureInference(task, 20);
  const inferProfile = await tf.profile(async () => await task.inferOne(0));
  return { evaluation, evalSeconds, inferTimes, peakInferBytes: inferProfile.peakBytes };
}

/** The byte counts {@link memoryRecord} combines. */
export interface MemoryParts {
  /** Peak tensor bytes of training update 1; 0 when there was none. */
  peakTrainBytes: number;
  peakInferBytes: number;
  /** Stored bytes of the frozen parameters. */
  frozenBytes: number;
  /** Trainable values (method and head), float32. */
  trainableParams: number;
  /** The optimizers' state bytes. */
  optimizerBytes: number;
  /** Resident set size of the process. */
  rssBytes: number;
}

/**
 * The record's memory: a run without a profiled update takes inference's peak as its training
 * peak, and activations are what the training peak holds beyond the frozen weights, the
 * trainable values (4 bytes each) and the optimizer state (never below 0).
 */
export function memoryRecord(before: RunRecord["memory"], parts: MemoryParts): RunRecord["memory"] {
  const peakTrainBytes = parts.peakTrainBytes === 0 ? parts.peakInferBytes : parts.peakTrainBytes;
  const trainable = 4 * parts.trainableParams;
  return {
    ...before,
    peakTrainBytes,
    peakInferBytes: parts.peakInferBytes,
    breakdown: {
      frozenWeights: parts.frozenBytes,
      trainable,
      optimizerState: parts.optimizerBytes,
      activations: Math.max(0, peakTrainBytes - parts.frozenBytes - trainable - parts.optimizerBytes),
    },
    rssBytes: parts.rssBytes,
  };
}
