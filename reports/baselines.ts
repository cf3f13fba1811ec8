/**
 * What the run records say about a study beyond its own scores: the trivial baselines the task
 * scored on the same evaluation items (`record.trivial`: BM25 and the random-ranking expectation
 * for retrieval, the add-one unigram model for LM; bench/tasks/*.ts) compared with every
 * configuration, and the tokenizer's coverage of each dataset split (`record.tokenizerCoverage`,
 * bench/tasks/coverage.ts) with warnings where it is poor.
 *
 * Warning thresholds ({@link COVERAGE_LIMITS}), and why:
 * - unknown + byte-fallback tokens above 5% of a split's tokens: on English text the embedded
 *   byte-level BPE spends none (0 of 19,047 tokens on the wordnet-lex test split), and byte tokens
 *   only appear for characters the vocabulary lacks; at 5% a visible part of the text is spelled
 *   byte by byte (or lost as unknown), the sign of a script or language the tokenizer was not
 *   trained on.
 * - more than 4 tokens per word: the embedded tokenizer takes 1.65 tokens per word on the
 *   wordnet-lex test split, 1.9 on WordNet glosses and 3.5 on WordNet concept names (underscored
 *   identifiers, the retrieval corpus); on a German news sentence it takes 5.0 and on a Russian one
 *   15.4 (93% byte tokens). Above 4, words of ordinary text break into many pieces the model has
 *   little chance to compose: a language the tokenizer was not built for.
 * - more than 10% of a split's texts longer than `--max-length`: one text in ten then loses its
 *   end (a classifier sees only a prefix; a retrieval document is embedded from its start only).
 * @module
 */
import type { RunRecord } from "../bench/record.ts";
import type { SplitCoverage } from "../bench/tasks/coverage.ts";
import { metricSpec } from "../bench/metrics/table.ts";
import type { Study } from "./data.ts";

/** Coverage warning thresholds (see the module doc for the reasons). */
export const COVERAGE_LIMITS = {
  /** Share of tokens that are unknown or byte fallback. */
  fallbackShare: 0.05,
  /** Tokens per whitespace-separated word. */
  tokensPerWord: 4,
  /** Share of texts cut by `--max-length`. */
  truncatedShare: 0.1,
} as const;

/** A value of a metric as the report shows it: proportions in %, others with their table decimals. */
export function showValue(name: string, v: number): string {
  const t = metricSpec(name);
  if (!t) return v.toFixed(3);
  return t.scale === 100 ? `${(v * 100).toFixed(t.digits + 1)}%` : v.toFixed(t.digits + 1);
}

/** One recorded trivial baseline against a study's configurations, on the study's metric. */
export interface RecordedBaseline {
  name: string;
  note?: string;
  /** The baseline's value of the study metric (raw); the mean when the runs disagree. */
  value: number;
  /** Lowest and highest value over the runs (they differ only when the runs scored different items). */
  min: number;
  max: number;
  /** Runs that recorded it. */
  runs: number;
  /** Configuration labels whose mean is not better than the baseline (at or below it, or at or above for lower-is-better metrics). */
  notBetter: string[];
  /** Configurations compared. */
  configs: number;
}

/** The recorded trivial baselines of a study, on its metric, in first-seen order. */
export function recordedBaselines(study: Study): RecordedBaseline[] {
  const m = study.metric;
  const byName = new Map<string, { note?: string; values: number[] }>();
  for (const r of study.ok) {
    for (const b of r.trivial ?? []) {
      const v = b.metrics?.[m.name];
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      const entry = byName.get(b.name) ?? { note: b.note, values: [] };
      entry.values.push(v);
      byName.set(b.name, entry);
    }
  }
  return [...byName].map(([name, { note, values }]) => {
    const value = values.reduce((s, v) => s + v, 0) / values.length;
    const notBetter = study.groups.filter((g) =>
      m.direction === "higher" ? g.primary.mean <= value : g.primary.mean >= value
    ).map((g) => g.label);
    return {
      name,
      note,
      value,
      min: Math.min(...values),
      max: Math.max(...values),
      runs: values.length,
      notBetter,
      configs: study.groups.length,
    };
  });
}

/** The coverage of one split over a study's runs, with its warnings. */
export interface CoverageRow {
  split: string;
  /** Runs that recorded this split. */
  runs: number;
  /** The worst value over those runs (runs differ only in tokenizer, data or `--max-length`). */
  fallbackShare: number;
  unknownShare: number;
  byteFallbackShare: number;
  tokensPerWord: number;
  tokensPerChar: number;
  truncatedShare: number | null;
  maxLength: number | null;
  warnings: string[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Warnings for one split's coverage against {@link COVERAGE_LIMITS}. */
export function coverageWarnings(
  split: string,
  c: Omit<CoverageRow, "split" | "runs" | "warnings">,
): string[] {
  const out: string[] = [];
  if (c.fallbackShare > COVERAGE_LIMITS.fallbackShare) {
    out.push(
      `${pct(c.fallbackShare)} of the ${split} tokens are unknown (${
        pct(c.unknownShare)
      }) or byte-fallback ` +
        `(${pct(c.byteFallbackShare)}) tokens, above ${pct(COVERAGE_LIMITS.fallbackShare)}: the tokenizer ` +
        `does not cover this text's characters; use a tokenizer trained on its language`,
    );
  }
  if (c.tokensPerWord > COVERAGE_LIMITS.tokensPerWord) {
    out.push(
      `the ${split} text takes ${c.tokensPerWord.toFixed(2)} tokens per word (${
        c.tokensPerChar.toFixed(2)
      } per character), above ${COVERAGE_LIMITS.tokensPerWord}: words break into many pieces`,
    );
  }
  if (c.truncatedShare !== null && c.truncatedShare > COVERAGE_LIMITS.truncatedShare) {
    out.push(
      `${pct(c.truncatedShare)} of the ${split} texts are longer than --max-length ${c.maxLength} and were ` +
        `cut, above ${pct(COVERAGE_LIMITS.truncatedShare)}: raise --max-length`,
    );
  }
  return out;
}

/** Tokenizer coverage per split over a study's runs (worst value per measure), in first-seen order. */
export function coverageRows(study: Study): CoverageRow[] {
  const bySplit = new Map<string, SplitCoverage[]>();
  for (const r of study.ok as RunRecord[]) {
    for (const [split, c] of Object.entries(r.tokenizerCoverage ?? {})) {
      bySplit.set(split, [...(bySplit.get(split) ?? []), c]);
    }
  }
  return [...bySplit].map(([split, cs]) => {
    const worst = (f: (c: SplitCoverage) => number) => Math.max(...cs.map(f));
    const truncated = cs.filter((c) => c.truncatedShare !== null);
    const row = {
      fallbackShare: worst((c) => c.unknownShare + c.byteFallbackShare),
      unknownShare: worst((c) => c.unknownShare),
      byteFallbackShare: worst((c) => c.byteFallbackShare),
      tokensPerWord: worst((c) => c.tokensPerWord),
      tokensPerChar: worst((c) => c.tokensPerChar),
      truncatedShare: truncated.length ? Math.max(...truncated.map((c) => c.truncatedShare!)) : null,
      maxLength: truncated.length ? Math.min(...truncated.map((c) => c.maxLength!)) : null,
    };
    return { split, runs: cs.length, ...row, warnings: coverageWarnings(split, row) };
  });
}

/** Display name of a recorded baseline. */
export function baselineTitle(name: string): string {
  const titles: Record<string, string> = { bm25: "BM25", random: "random ranking", unigram: "unigram model" };
  return titles[name] ?? name;
}

/**
 * Findings sentences for the recorded baselines: "every configuration scored at or below BM25
 * (mrr 41.20%)" style, with the numbers, and one line per coverage warning.
 */
export function baselineFindings(
  study: Study,
  baselines: readonly RecordedBaseline[],
  coverage: readonly CoverageRow[],
): string[] {
  const m = study.metric;
  const lines: string[] = [];
  const atOr = m.direction === "higher" ? "at or below" : "at or above";
  for (const b of baselines) {
    const shown = b.min === b.max
      ? `${m.name} ${showValue(m.name, b.value)}`
      : `${m.name} ${showValue(m.name, b.value)} (mean; ${showValue(m.name, b.min)} to ${
        showValue(m.name, b.max)
      } over runs scoring different items)`;
    const title = baselineTitle(b.name);
    const head = `Trivial baseline ${title}: ${shown} on the same test items, scored by the task` +
      (b.note ? ` (${b.note})` : "");
    const bestMean = m.direction === "higher"
      ? Math.max(...study.groups.map((g) => g.primary.mean))
      : Math.min(...study.groups.map((g) => g.primary.mean));
    if (b.configs === 0) lines.push(`${head}.`);
    else if (b.notBetter.length === b.configs) {
      lines.push(
        `${head}; every configuration (${b.configs}) scored ${atOr} ${title} (best mean ${
          showValue(m.name, bestMean)
        }).`,
      );
    } else if (b.notBetter.length > 0) {
      lines.push(
        `${head}; ${b.notBetter.length} of ${b.configs} configurations scored ${atOr} it: ${
          b.notBetter.join(", ")
        }.`,
      );
    } else {
      lines.push(`${head}; every configuration scored better (the weakest by mean still beats it).`);
    }
  }
  for (const row of coverage) for (const w of row.warnings) lines.push(`Tokenizer coverage warning: ${w}.`);
  return lines;
}
