/**
 * Learning-rate schedules: linear warmup followed by cosine, linear or no decay. The optimizer,
 * AdamW, is `methods/optim.ts`'s (re-exported here).
 * @module
 */
// AdamW lives with the Adam core it shares with GaLore (methods define the optimizer contract);
// re-exported for the harness and scripts that take it together with the schedule.
export { AdamW } from "../methods/optim.ts";

/** Learning-rate schedule options. */
export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Total number of updates. */
  totalSteps: number;
  /** Linear warmup updates from lr/warmup to lr (default 0). */
  warmupSteps?: number;
  /** Decay after warmup (default cosine). */
  decay?: "cosine" | "linear" | "constant";
  /** Final learning rate as a fraction of the peak (default 0). */
  minRatio?: number;
}

/** Learning rate at update `step` (0-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  const warmup = o.warmupSteps ?? 0;
  if (step < warmup) return (o.lr * (step + 1)) / warmup;
  const decaySteps = Math.max(1, o.totalSteps - warmup);
  const progress = Math.min(1, (step - warmup) / decaySteps);
  const min = o.minRatio ?? 0;
  const decay = o.decay ?? "cosine";
  const factor = decay === "constant"
    ? 1
    : decay === "linear"
    ? 1 - progress
    : 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (min + (1 - min) * factor);
}
