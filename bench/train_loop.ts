/**
 * The training stage of a run, the loop alone: shuffled batches, gradient accumulation, the
 * learning-rate schedule, AdamW (or the method's own optimizer) on the method's variables and the
 * task head, the peak memory of a representative update, the loss curve, and the judgement of
 * whether the run trained ({@link trainingFailure}).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../models/util/rng.ts";
import type { AppliedMethod, Optimizer } from "../methods/types.ts";
import { AdamW, learningRate } from "./optim.ts";
import { Progress } from "./progress.ts";
import type { RunConfig, RunRecord } from "./record.ts";
import type { TaskRunner } from "./tasks/types.ts";

/** The optimizer updates a run makes: `--steps`, else `--epochs` over the training items. */
export function totalSteps(
  config: Pick<RunConfig, "steps" | "epochs" | "batchSize" | "gradAccum">,
  trainItems: number,
) {
  return config.steps ?? Math.ceil((config.epochs * trainItems) / (config.batchSize * config.gradAccum));
}

/** The run's optimizers: the method's own (GaLore) or AdamW on its variables, AdamW on the head; null when nothing trains. */
export interface RunOptimizers {
  method: Optimizer | null;
  head: Optimizer | null;
}

/** Build {@link RunOptimizers} with the run's weight decay and clipping (the caller disposes them). */
export function makeOptimizers(
  applied: Pick<AppliedMethod, "trainable" | "makeOptimizer">,
  headVars: tf.Variable[],
  config: Pick<RunConfig, "weightDecay" | "clipNorm">,
): RunOptimizers {
  const options = { weightDecay: config.weightDecay, clipNorm: config.clipNorm };
  const methodVars = applied.trainable;
  return {
    method: methodVars.length > 0 ? applied.makeOptimizer?.(options) ?? new AdamW(methodVars, options) : null,
    head: headVars.length > 0 ? new AdamW(headVars, options) : null,
  };
}

/**
 * An endless stream of batches of `batchSize` item indices: each epoch is a fresh shuffle of
 * `0..items-1` from `rng`, appended when fewer than a batch remain (so a batch may span epochs).
 */
export function batchStream(items: number, batchSize: number, rng: Rng): () => number[] {
  let order: number[] = [];
  return () => {
    if (order.length < batchSize) {
      order = order.concat(rng.shuffle(Array.from({ length: items }, (_, i) => i)));
    }
    return order.splice(0, batchSize);
  };
}

/**
 * Gradients of the mean loss over micro-batches: each batch's loss (a mean over its items) and its
 * gradient with respect to `vars` are computed in turn and summed, then divided by the number of
 * batches; a variable the loss does not reach gets zeros. With equal-sized batches this is the
 * gradient of one batch holding them all. Returns the mean loss and the gradients (caller disposes).
 */
export async function accumulatedGradients(
  lossOf: (items: number[]) => tf.Scalar,
  vars: tf.Variable[],
  batches: number[][],
): Promise<{ loss: number; grads: tf.Tensor[] }> {
  let lossSum = 0;
  let acc: tf.Tensor[] | null = null;
  for (const items of batches) {
    const { value, grads } = tf.variableGrads(() => lossOf(items), vars);
    const list = vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
    lossSum += (await value.data())[0];
    value.dispose();
    if (acc === null) acc = list;
    else {
      const prev: tf.Tensor[] = acc;
      acc = prev.map((g, i) => tf.add(g, list[i]));
      tf.dispose([...prev, ...list]);
    }
  }
  let grads = acc!;
  if (batches.length > 1) {
    const summed = grads;
    grads = summed.map((g) => tf.div(g, batches.length));
    tf.dispose(summed);
  }
  return { loss: lossSum / batches.length, grads };
}

/**
 * Runs with fewer updates are not judged by their loss curve: each update's loss is on another
 * batch, and over a few updates batch-to-batch noise dominates (the stories260K fixture's loss
 * rises over its first three or four updates before it falls).
 */
export const MIN_JUDGED_UPDATES = 10;

/**
 * Why a finished training run failed, or null when it trained.
 * - `trainables`, read once: a tensor whose sum of squares is not finite in float32 (a NaN or
 *   infinite value, or values beyond about 1.8e19, whose squares overflow) means the parameters
 *   overflowed, as `--lr 1e30` does (lora_B near 1e30 while the loss sits at chance level).
 * - `curve`, each update's loss (a non-finite loss already stopped the run at its step): a loss
 *   that never falls below its first value over a run of {@link MIN_JUDGED_UPDATES} or more
 *   updates means the run diverged or did not learn.
 */
export function trainingFailure(
  curve: readonly { loss: number }[],
  trainables: readonly tf.Variable[],
): string | null {
  if (trainables.length > 0) {
    const probes = tf.tidy(() => tf.stack(trainables.map((v) => tf.sum(tf.square(v)))));
    const bad = [...probes.dataSync()].filter((x) => !Number.isFinite(x)).length;
    probes.dispose();
    if (bad > 0) {
      return `trainable parameters overflowed (${bad} of ${trainables.length} tensors hold values ` +
        "whose squares are not finite in float32); lower --lr or --head-lr";
    }
  }
  if (curve.length < MIN_JUDGED_UPDATES) return null;
  const start = curve[0].loss;
  const best = Math.min(...curve.slice(1).map((p) => p.loss));
  if (best < start) return null;
  return `loss never fell below its start over ${curve.length} updates (${start.toPrecision(5)} at step 0, ` +
    `lowest later ${best.toPrecision(5)}): the run diverged or did not learn; lower --lr or --head-lr`;
}

/** What the loop needs. */
export interface TrainLoopInput {
  task: Pick<TaskRunner, "trainItems" | "loss" | "batchTokens" | "evaluate" | "primaryMetric">;
  /** The applied method's loss term and per-update hook. */
  method: Pick<AppliedMethod, "regularizer" | "afterStep">;
  /** The method's trainable variables, then the task head's (the optimizers' order). */
  methodVars: tf.Variable[];
  headVars: tf.Variable[];
  optimizers: RunOptimizers;
  /** Optimizer updates to make. */
  steps: number;
  config: Pick<
    RunConfig,
    "lr" | "headLr" | "warmupRatio" | "schedule" | "batchSize" | "gradAccum" | "evalEvery" | "maxEval"
  >;
  /** The data order's generator (the run's `rng.fork("data-order")`). */
  orderRng: Rng;
  /** Progress bar label; `quiet` hides it. */
  label: string;
  quiet?: boolean;
}

/** What the loop did; on failure, the curve and peak up to the failing update. */
export interface TrainLoopResult {
  /** One point per finished update: its mean loss, learning rate and, every `--eval-every`, the dev metric. */
  curve: RunRecord["curve"];
  /** Wall time of each update, ms. */
  stepTimes: number[];
  /** Tokens the training batches held. */
  tokens: number;
  trainSeconds: number;
  /** Peak tensor bytes during update 1 (tf.profile); 0 when the run made fewer than two updates. */
  peakTrainBytes: number;
  /** Why training failed (a non-finite loss, an error in a step, {@link trainingFailure}); null when it trained. */
  failure: string | null;
}

/** Train: `steps` updates of `gradAccum` batches each (no update when nothing trains or steps is 0). */
export async function trainLoop(input: TrainLoopInput): Promise<TrainLoopResult> {
  const { task, method, methodVars, headVars, optimizers, steps, config } = input;
  const allVars = [...methodVars, ...headVars];
  const schedule = {
    lr: config.lr,
    totalSteps: steps,
    warmupSteps: Math.round(config.warmupRatio * steps),
    decay: config.schedule,
  };
  const nextBatch = batchStream(task.trainItems, config.batchSize, input.orderRng);
  const lossOf = (items: number[]): tf.Scalar => {
    const loss = task.loss(items);
    return method.regularizer ? tf.add(loss, method.regularizer()) as tf.Scalar : loss;
  };
  const result: TrainLoopResult = {
    curve: [],
    stepTimes: [],
    tokens: 0,
    trainSeconds: 0,
    peakTrainBytes: 0,
    failure: null,
  };
  const progress = new Progress(steps, input.label, input.quiet);
  const update = async (step: number, lrScale: number): Promise<number> => {
    const batches = Array.from({ length: config.gradAccum }, nextBatch);
    for (const items of batches) result.tokens += task.batchTokens(items);
    const { loss, grads } = await accumulatedGradients(lossOf, allVars, batches);
    if (!Number.isFinite(loss)) {
      throw new Error(`loss became ${loss} at step ${step}; lower --lr or check the data`);
    }
    optimizers.method?.apply(grads.slice(0, methodVars.length), config.lr * lrScale).dispose();
    optimizers.head?.apply(grads.slice(methodVars.length), config.headLr * lrScale).dispose();
    method.afterStep?.(new Map(allVars.map((v, i) => [v, grads[i]])), step);
    tf.dispose(grads);
    return loss;
  };
  const trainStart = performance.now();
  try {
    for (let step = 0; allVars.length > 0 && step < steps; step++) {
      const s0 = performance.now();
      const lrScale = learningRate(step, schedule) / config.lr;
      let loss: number;
      if (step === 1) {
        // Peak memory of a representative update (tf.profile tracks the engine's peak bytes).
        let l = 0;
        const info = await tf.profile(async () => {
          l = await update(step, lrScale);
        });
        result.peakTrainBytes = info.peakBytes;
        loss = l;
      } else loss = await update(step, lrScale);
      result.stepTimes.push(performance.now() - s0);
      const point: RunRecord["curve"][number] = { step, loss, lr: config.lr * lrScale };
      if (config.evalEvery > 0 && (step + 1) % config.evalEvery === 0 && step + 1 < steps) {
        const ev = await task.evaluate("dev", config.maxEval);
        point.evalMetric = ev.metrics[task.primaryMetric];
      }
      result.curve.push(point);
      progress.tick(1, `loss ${loss.toFixed(4)}`);
    }
  } catch (err) {
    result.failure = (err as Error).message;
    return result;
  }
  result.trainSeconds = (performance.now() - trainStart) / 1000;
  result.failure = trainingFailure(result.curve, allVars);
  return result;
}
