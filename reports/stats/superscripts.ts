/**
 * ranx-style significance superscripts for a table of runs.
 * @module
 */
import { Rng } from "../../models/util/rng.ts";
import { bonferroni, holm } from "./correction.ts";
import { mean } from "./describe.ts";
import { pairedRandomizationTest } from "./randomization.ts";

/** Options of {@link significanceSuperscripts}. */
export interface SuperscriptOptions {
  /** Seed; each pair gets its own child stream `fork("i|j")`, so results do not depend on order. */
  seed: number;
  /** Family-wise level (default 0.05). */
  alpha?: number;
  /** Correction over all k(k-1)/2 pairs (default "holm"). */
  correction?: "holm" | "bonferroni";
  /** Sign-flip permutations per pair (default 10000). */
  permutations?: number;
}

/** One row of the superscript table. */
export interface SuperscriptRow {
  name: string;
  /** Letter of this run: a, b, c, ... in input order. */
  letter: string;
  mean: number;
  /** Letters of the runs this run beats significantly (higher mean, adjusted p <= alpha). */
  beats: string[];
}

/** One tested pair. */
export interface PairTest {
  a: string;
  b: string;
  diff: number;
  p: number;
  pAdjusted: number;
}

/**
 * For runs given as name -> per-query scores (same queries, same order), test every pair with
 * {@link pairedRandomizationTest}, adjust the k(k-1)/2 p-values together (Holm by default,
 * Bonferroni on request), and list for each run the letters of the runs it beats: run i beats
 * j when `mean_i > mean_j` and `p_adj(i, j) <= alpha`. This is how ranx marks a table
 * ("0.42^{bc}"); higher scores are better.
 */
export function significanceSuperscripts(
  runs: Readonly<Record<string, readonly number[]>>,
  options: SuperscriptOptions,
): { rows: SuperscriptRow[]; pairs: PairTest[] } {
  const names = Object.keys(runs);
  if (names.length < 2) {
    throw new Error(`significanceSuperscripts needs at least 2 runs, got ${names.length}`);
  }
  if (names.length > 26) {
    throw new Error(`significanceSuperscripts labels runs a-z, got ${names.length} runs`);
  }
  const alpha = options.alpha ?? 0.05;
  if (!(alpha > 0 && alpha < 1)) {
    throw new Error(`significanceSuperscripts alpha must be in (0, 1), got ${alpha}`);
  }
  const root = new Rng(options.seed);
  const raw: PairTest[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const r = pairedRandomizationTest(runs[names[i]], runs[names[j]], {
        seed: root.fork(`${i}|${j}`).seed,
        permutations: options.permutations,
      });
      raw.push({ a: names[i], b: names[j], diff: r.diff, p: r.p, pAdjusted: NaN });
    }
  }
  const adj = (options.correction ?? "holm") === "holm"
    ? holm(raw.map((r) => r.p))
    : bonferroni(raw.map((r) => r.p));
  raw.forEach((r, i) => (r.pAdjusted = adj[i]));
  const letter = (i: number) => String.fromCharCode(97 + i);
  const rows = names.map((name, i): SuperscriptRow => ({
    name,
    letter: letter(i),
    mean: mean(runs[name]),
    beats: [],
  }));
  for (const pr of raw) {
    if (pr.pAdjusted > alpha || pr.diff === 0) continue;
    const [w, l] = pr.diff > 0 ? [pr.a, pr.b] : [pr.b, pr.a];
    rows[names.indexOf(w)].beats.push(letter(names.indexOf(l)));
  }
  rows.forEach((r) => r.beats.sort());
  return { rows, pairs: raw };
}
