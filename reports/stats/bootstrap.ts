/**
 * Percentile bootstrap confidence interval of the mean.
 * @module
 */
import { Rng } from "../../models/util/rng.ts";
import { checkSample, mean, quantile } from "./describe.ts";

/** Options of {@link bootstrapMeanCI}. */
export interface BootstrapOptions {
  /** Seed of the resampling stream (required so reports are reproducible). */
  seed: number;
  /** Number of bootstrap resamples B (default 10000). */
  resamples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

/** Result of {@link bootstrapMeanCI}. */
export interface BootstrapCI {
  mean: number;
  lo: number;
  hi: number;
  level: number;
  resamples: number;
}

/**
 * Percentile bootstrap CI of the mean: draw B resamples of size n with replacement (seeded
 * {@link Rng}), take their means `m*_b`, and report the `(1 - level)/2` and `(1 + level)/2`
 * quantiles of the `m*` (linear interpolation, numpy's default).
 */
export function bootstrapMeanCI(values: readonly number[], options: BootstrapOptions): BootstrapCI {
  checkSample(values, "bootstrapMeanCI values");
  const resamples = options.resamples ?? 10000;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new Error(`bootstrapMeanCI resamples must be a positive integer, got ${resamples}`);
  }
  if (!(level > 0 && level < 1)) throw new Error(`bootstrapMeanCI level must be in (0, 1), got ${level}`);
  const rng = new Rng(options.seed);
  const n = values.length;
  const means = new Array<number>(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)];
    means[b] = s / n;
  }
  return {
    mean: mean(values),
    lo: quantile(means, (1 - level) / 2),
    hi: quantile(means, (1 + level) / 2),
    level,
    resamples,
  };
}
