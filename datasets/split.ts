/**
 * Fixed splits and seeded, nested subsets.
 *
 * - {@link hashSplit}: a split that is a pure function of an item's key (no run seed), so every
 *   task and the pretraining corpus agree on which items are held out.
 * - {@link subsetTrain}: the training-size knob; subsets are prefixes of one seeded permutation,
 *   so smaller subsets are always inside larger ones and every run of a study sees the same ones.
 * - {@link capSplit}: the same prefix rule with a fixed seed, used to cap dev/test sizes for CPU runs.
 * @module
 */
import { hashString, Rng } from "../models/util/rng.ts";
import type { ClassificationExample, SplitName, TextExample } from "./types.ts";

/** Seed of the train-subset permutation when a spec gives none. */
export const DEFAULT_SPLIT_SEED = 20240917;

/**
 * The fixed split of a key: u = first draw of `new Rng(hashString(key))`; u < 0.1 -> test,
 * u < 0.2 -> dev, else train. FNV-1a alone has weak low bits for similar keys (e.g. offsets), so
 * its value only seeds the Rng, whose splitmix32 seeding mixes it well.
 */
export function hashSplit(key: string, testFraction = 0.1, devFraction = 0.1): SplitName {
  const u = new Rng(hashString(key)).next();
  if (u < testFraction) return "test";
  if (u < testFraction + devFraction) return "dev";
  return "train";
}

/** Options of {@link subsetTrain}; give at most one. */
export interface SubsetOptions {
  /** Keep this many examples (a prefix of the seeded permutation of all train examples). */
  trainSize?: number;
  /** Keep this many examples of every label (a prefix of each label's seeded permutation). */
  trainPerClass?: number;
}

/**
 * A fixed seeded permutation of examples: sorted by id first so the result does not depend on
 * input order, then shuffled by `new Rng(seed).fork(label)`.
 */
export function seededOrder<T extends TextExample>(examples: readonly T[], seed: number, label: string): T[] {
  const sorted = [...examples].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].id === sorted[i - 1].id) {
      throw new Error(`duplicate example id "${sorted[i].id}" in ${label}: give every example a unique id`);
    }
  }
  return new Rng(seed).fork(label).shuffle(sorted);
}

/**
 * A seeded subset of the full training split. Nested: for the same `splitSeed`, the subset of
 * size n is a prefix of (so contained in) the subset of any size m > n; per class likewise.
 * Pass the dataset's `splitSeed`, not the run seed. With no option set, returns all examples in
 * the permuted order. Asking for more than exists throws, naming the available count.
 */
export function subsetTrain<T extends TextExample>(
  examples: readonly T[],
  options: SubsetOptions,
  splitSeed: number,
): T[] {
  const { trainSize, trainPerClass } = options;
  if (trainSize !== undefined && trainPerClass !== undefined) {
    throw new Error("subsetTrain: got both trainSize and trainPerClass; give only one");
  }
  const order = seededOrder(examples, splitSeed, "subset-train");
  if (trainPerClass !== undefined) {
    checkCount("trainPerClass", trainPerClass);
    const byLabel = new Map<string, T[]>();
    for (const ex of examples) {
      const label = (ex as unknown as ClassificationExample).label;
      if (typeof label !== "string") {
        throw new Error(
          `subsetTrain: trainPerClass needs labelled examples, "${ex.id}" has none; use trainSize`,
        );
      }
      if (!byLabel.has(label)) byLabel.set(label, []);
      byLabel.get(label)!.push(ex);
    }
    const keep = new Set<string>();
    for (const [label, group] of [...byLabel].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (group.length < trainPerClass) {
        throw new Error(
          `subsetTrain: trainPerClass=${trainPerClass} but label "${label}" has only ${group.length} train examples; use --train-per-class ${group.length} or less`,
        );
      }
      // Each label gets its own stream so adding a label never reshuffles another.
      for (const ex of seededOrder(group, splitSeed, `subset-train:${label}`).slice(0, trainPerClass)) {
        keep.add(ex.id);
      }
    }
    // Interleave classes in the global permuted order rather than grouping them.
    return order.filter((ex) => keep.has(ex.id));
  }
  if (trainSize !== undefined) {
    checkCount("trainSize", trainSize);
    if (trainSize > order.length) {
      throw new Error(
        `subsetTrain: trainSize=${trainSize} but the train split has only ${order.length} examples; use --train-size ${order.length} or less`,
      );
    }
    return order.slice(0, trainSize);
  }
  return order;
}

/** Seed of the dev/test caps: fixed, so evaluation items never change with `splitSeed` or train size. */
export const CAP_SEED = 20240917;

/**
 * Cap a dev/test split at `max` items: the prefix of its permutation under {@link CAP_SEED}
 * (label `cap:<what>`), so a smaller cap is inside a larger one. No cap (or a cap >= size) keeps
 * all items, in input order.
 */
export function capSplit<T extends TextExample>(
  examples: readonly T[],
  max: number | undefined,
  what: string,
): T[] {
  if (max === undefined || max >= examples.length) return [...examples];
  checkCount(what, max);
  return seededOrder(examples, CAP_SEED, `cap:${what}`).slice(0, max);
}

function checkCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got ${n}`);
}
