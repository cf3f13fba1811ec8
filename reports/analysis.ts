/**
 * The statistics section of a report: for each factor a study varies, the runs are matched on
 * everything else (other factors, other config fields, seed) with matchByFactor, then tested.
 * Every test that cannot run on the data (too few values, all equal) is reported with its reason
 * instead of failing the report.
 * @module
 */
import type { RunRecord } from "../bench/record.ts";
import {
  alignedRankAnova,
  bootstrapMeanCI,
  cliffsDelta,
  cohensD,
  crossedTerms,
  factorialAnova,
  type FactorialEffect,
  type FactorialRow,
  holm,
  judgeDifference,
  type Judgement,
  kruskalWallis,
  levene,
  mannWhitneyU,
  matchByFactor,
  normalityTest,
  oneWayAnova,
  pooledSd,
  type Row,
  significanceSuperscripts,
  wilcoxonSignedRank,
} from "./stats/mod.ts";
import {
  type BoundOption,
  type ConfigGroup,
  type Factor,
  FACTOR_LABELS,
  FACTORS,
  factorsOf,
  type Level,
  levelBoundOptions,
  levelsOf,
  otherKey,
  perItemScores,
  sortLevels,
  type Study,
  valueOf,
} from "./data.ts";
import { Rng } from "../models/util/rng.ts";
import {
  collapsed,
  type RandomRankingScores,
  randomRankingScores,
  type TrivialScores,
  trivialScores,
} from "./trivial.ts";
import { type CoverageRow, coverageRows, type RecordedBaseline, recordedBaselines } from "./baselines.ts";
import { type ForgettingView, forgettingView } from "./forgetting.ts";
import { answerHypotheses, type HypothesisAnswer } from "./hypotheses.ts";

/** A value, or why it could not be computed. */
export type Attempt<T> = { ok: true; value: T } | { ok: false; reason: string };

function attempt<T>(fn: () => T): Attempt<T> {
  try {
    const value = fn();
    return { ok: true, value };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Options of {@link analyzeStudy}. */
export interface AnalysisOptions {
  /** Root seed of bootstrap and randomization streams (default 0). */
  seed?: number;
  /** Bootstrap resamples (default 2000). */
  resamples?: number;
  /** Sign-flip permutations per retrieval pair (default 5000). */
  permutations?: number;
  /** Significance level (default 0.05). */
  alpha?: number;
  /**
   * Equivalence margin for TOST, in the primary metric's difference unit (default
   * {@link defaultMargin}: 1 point for metrics shown in points, else 1% of the study's mean).
   */
  margin?: number;
}

/**
 * The equivalence margin a study uses unless told otherwise: 1 point (0.01 raw) for metrics the
 * table shows in points (accuracy, F1, MRR, NDCG, recall), else 1% of the mean of the primary
 * metric over the analysed runs (perplexity 80 -> ±0.8), in the metric's difference unit.
 */
export function defaultMargin(study: Study): number {
  if (study.metric.scale === 100) return 1;
  const xs = study.ok.map((r) => valueOf(r, study.metric)!).filter(Number.isFinite);
  const m = xs.length ? Math.abs(xs.reduce((a, b) => a + b, 0) / xs.length) * study.metric.scale : 0;
  return m > 0 ? 0.01 * m : 1;
}

/** Per-level summary of a factor over the matched runs. */
export interface LevelSummary {
  level: string;
  n: number;
  mean: number;
  ci: Attempt<{ lo: number; hi: number }>;
}

/** One pair of levels. */
export interface PairResult {
  a: string;
  b: string;
  /** Matched run pairs. */
  n: number;
  /** mean(a) - mean(b) in the metric's display unit (scaled). */
  diff: number;
  mannWhitney: Attempt<{ u: number; p: number; pAdjusted: number }>;
  wilcoxon: Attempt<{ p: number; pAdjusted: number }>;
  cliffsDelta: Attempt<number>;
  cohensD: Attempt<number>;
  /** Paired-t CI of the mean difference (scaled), at level 1 - alpha/k (Bonferroni over the factor's pairs). */
  ci: Attempt<{ lo: number; hi: number; level: number }>;
  /** The judgement of the paired difference (reports/stats/verdict.ts). */
  judgement: Judgement;
  /** Which level is better (by direction), or null when none is shown better. */
  better: string | null;
  verdict: string;
}

/** Analysis of one factor. */
export interface FactorAnalysis {
  factor: Factor;
  label: string;
  levels: string[];
  /** Matched configurations (x seeds) present at every level. */
  matched: number;
  dropped: number;
  levelSummaries: LevelSummary[];
  kruskal: Attempt<{ h: number; df: number; p: number }>;
  anova: Attempt<{ f: number; p: number; dfBetween: number; dfWithin: number; etaSquared: number }>;
  levene: Attempt<{ w: number; p: number }>;
  pairs: PairResult[];
  /** Method options that follow the factor's level and so go along with it in every comparison. */
  bound: BoundOption[];
}

/** One effect row of the design model, in the metric's display unit. */
export interface DesignEffect {
  name: string;
  factors: string[];
  ss: number;
  df: number;
  f: number;
  p: number;
  partialEtaSquared: number;
}

/**
 * One model over the whole design of a study (reports/stats/factorial.ts): every varying factor
 * and every pair of them, seeds as replicates, type II sums of squares. When the residuals fail
 * the D'Agostino-Pearson test (p < alpha), the aligned-rank-transform ANOVA is the one read.
 */
export interface DesignAnova {
  /** Factor labels in the model (plus "other settings" when runs differ beyond the factors). */
  factors: string[];
  /** Where the factors and level names come from: the sweep file or the run configs. */
  source: string;
  n: number;
  ssType: "II";
  balanced: boolean;
  errorDf: number;
  /** Parametric type II table. */
  parametric: DesignEffect[];
  /** Residual normality check, or why it was not run. */
  normality: Attempt<{ k2: number; p: number }>;
  /** ART table when the residuals are far from normal, else null. */
  art: DesignEffect[] | null;
  /** Which table the findings read. */
  used: "parametric" | "aligned rank transform";
  /** Terms whose df fell below the product of (levels - 1): aliased levels (frozen has no rank). */
  aliased: string[];
}

/** ranx-style significance letters of a retrieval study. */
export interface Superscripts {
  metric: string;
  queries: number;
  /** config key → letter and the letters it beats. */
  byConfig: Map<string, { letter: string; beats: string[] }>;
  pairs: { a: string; b: string; diff: number; p: number; pAdjusted: number }[];
  note?: string;
}

/** Every configuration of a study against one baseline method (frozen, full). */
export interface BaselineComparison {
  /** The baseline method. */
  baseline: string;
  rows: { config: string; key: string; n: number; judgement: Judgement }[];
}

/** Trivial baselines of a classification study and the runs whose predictions collapsed. */
export interface TrivialSummary {
  /** Majority-class and chance scores on the test items (of the run with the most items). */
  scores: TrivialScores;
  /** Configurations whose mean primary metric is at or below the majority class's (accuracy only). */
  atOrBelowMajority: string[];
  /** Runs that put >= 90% of their predictions in one class: name, class, share. */
  collapsed: { runId: string; name: string; label: string; share: number }[];
}

/** Statistics of one study. */
export interface StudyAnalysis {
  /** The TOST margin used, in the primary metric's difference unit. */
  margin: number;
  baselines: BaselineComparison[];
  trivial: TrivialSummary | null;
  /**
   * Random-ranking expectations of a retrieval study derived from the corpus size (of the run with
   * the largest corpus); null when the records carry the task's own exact expectation (`recorded`).
   */
  randomRanking: RandomRankingScores | null;
  /** Trivial baselines the runs recorded (BM25, random ranking, unigram) against every configuration. */
  recorded: RecordedBaseline[];
  /** Tokenizer coverage per dataset split, with warnings. */
  coverage: CoverageRow[];
  factors: FactorAnalysis[];
  /** One model over the whole design (null when no factor varies). */
  design: Attempt<DesignAnova> | null;
  /** Answers to the hypotheses the sweep file declares (reports/hypotheses.ts); empty without any. */
  hypotheses: HypothesisAnswer[];
  superscripts: Attempt<Superscripts> | null;
  /** Forgetting per configuration against its quality gain (reports/forgetting.ts); null when no run recorded it. */
  forgetting: ForgettingView | null;
  /** Pooled SD across seeds of the same configuration (scaled), the seed-noise yardstick. */
  seedSd: number;
  notes: string[];
}

/** Display form of a level (null never reaches here: such runs are left out of the factor). */
export function levelText(l: Level): string {
  return l === null ? "n/a" : String(l);
}

/**
 * One matchByFactor row per run: factor columns, other config, seed, metric. Method options that
 * follow the factor's level (`bound`, bench/factors.ts levelBoundOptions) are left out of the
 * other config, so alpha = 2 x rank does not keep rank 4 from meeting rank 16.
 */
function rowsFor(
  runs: readonly RunRecord[],
  study: Study,
  factor: Factor,
  bound: readonly BoundOption[],
): Row[] {
  const rows: Row[] = [];
  for (const r of runs) {
    const f = factorsOf(r.config);
    if (f[factor] === null) continue;
    const row: Record<string, string | number | boolean> = {};
    for (const k of FACTORS) row[k] = f[k] === null ? "n/a" : f[k] as string | number;
    const own = new Set(bound.filter((b) => b.method === String(r.config.method)).map((b) => b.option));
    row.other = otherKey(r.config, own);
    row.seed = r.config.seed;
    row.value = valueOf(r, study.metric)!;
    rows.push(row);
  }
  return rows;
}

/**
 * Rows of two levels made comparable: a factor one level never has (rank and targets of
 * `frozen`, rank of `ia3`) is left out of the matching, and so are method options beyond targets
 * and rank (the other level's method may not take them); the other level's runs that then share
 * a setting (lora at ranks 4 and 16 against the one frozen run of a seed) are averaged, so the
 * baseline is compared with the method as a whole. Levels that share every factor match as before.
 */
function comparableRows(rows: readonly Row[], factor: Factor, la: Level, lb: Level): Row[] {
  const sub = rows.filter((r) => r[factor] === la || r[factor] === lb);
  const absent = FACTORS.filter((k) =>
    k !== factor && [la, lb].some((l) => sub.filter((r) => r[factor] === l).every((r) => r[k] === "n/a"))
  );
  if (absent.length === 0) return sub;
  const groups = new Map<
    string,
    { row: Record<string, string | number | boolean>; sum: number; n: number }
  >();
  for (const r of sub) {
    const row: Record<string, string | number | boolean> = { ...r };
    for (const k of absent) row[k] = "n/a";
    // Method options differ between methods by nature; the rest of the config must still agree.
    row.other = JSON.stringify(Object.entries(JSON.parse(String(r.other))).filter(([k]) => k !== "opts"));
    const key = JSON.stringify(Object.entries(row).filter(([k]) => k !== "value"));
    const g = groups.get(key) ?? { row, sum: 0, n: 0 };
    g.sum += r.value as number;
    g.n++;
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ ...g.row, value: g.sum / g.n }));
}

/** Analyse one factor of a study. */
export function analyzeFactor(
  study: Study,
  factor: Factor,
  _seedSd: number,
  opts: AnalysisOptions = {},
): FactorAnalysis | null {
  const bound = levelBoundOptions(study.ok.map((r) => r.config), factor);
  const rows = rowsFor(study.ok, study, factor, bound);
  const levels = levelsOf(study.ok, factor);
  if (levels.length < 2 || rows.length === 0) return null;
  const { scale, direction } = study.metric;
  const margin = opts.margin ?? defaultMargin(study);
  const rng = new Rng(opts.seed ?? 0).fork(`${study.id}|${factor}`);
  const resamples = opts.resamples ?? 2000;
  const all = matchByFactor(rows, factor);
  // Display order: numeric levels numerically (16/class before 64/class), matchByFactor's otherwise.
  const order = sortLevels(all.levels as Level[]).map((l) => all.levels.indexOf(l as string | number));
  const groups = order.map((i) => all.groups[i]);
  const usable = all.configs.length > 0;
  const noMatch = { ok: false as const, reason: "no configuration is present at every level" };
  const levelSummaries: LevelSummary[] = order.map((li, i) => ({
    level: String(all.levels[li]),
    n: groups[i].length,
    mean: usable ? groups[i].reduce((s, x) => s + x, 0) / groups[i].length * scale : NaN,
    ci: usable
      ? attempt(() => {
        const c = bootstrapMeanCI(groups[i], { seed: rng.fork(`ci|${all.levels[li]}`).seed, resamples });
        return { lo: c.lo * scale, hi: c.hi * scale };
      })
      : noMatch,
  }));
  // Pairwise: match each pair on its own, so a level missing elsewhere does not drop the pair.
  const pairLevels: [Level, Level][] = [];
  for (let i = 0; i < levels.length; i++) {
    for (let j = i + 1; j < levels.length; j++) pairLevels.push([levels[i], levels[j]]);
  }
  const raw = pairLevels.map(([la, lb]) => {
    const m = matchByFactor(comparableRows(rows, factor, la, lb), factor);
    // Look levels up by value: matchByFactor's level order need not be ours.
    const a = m.groups[m.levels.indexOf(la as string | number)] ?? [];
    const b = m.groups[m.levels.indexOf(lb as string | number)] ?? [];
    return { la, lb, a, b, m };
  });
  const mwRaw = raw.map(({ a, b }) => a.length ? attempt(() => mannWhitneyU(a, b)) : noMatch);
  const wxRaw = raw.map(({ a, b }) => a.length ? attempt(() => wilcoxonSignedRank(a, b)) : noMatch);
  const adjust = (ps: Attempt<{ p: number }>[]) => {
    const idx = ps.map((p, i) => (p.ok ? i : -1)).filter((i) => i >= 0);
    const adj = holm(idx.map((i) => (ps[i] as { value: { p: number } }).value.p));
    const out = new Map<number, number>();
    idx.forEach((i, k) => out.set(i, adj[k]));
    return out;
  };
  const mwAdj = adjust(mwRaw);
  const wxAdj = adjust(wxRaw);
  const testable = raw.filter(({ a }) => a.length >= 2).length;
  const pairs: PairResult[] = raw.map(({ la, lb, a, b }, i): PairResult => {
    const name = `${FACTOR_LABELS[factor]} ${levelText(la)} vs ${levelText(lb)}`;
    const mw = mwRaw[i];
    const wx = wxRaw[i];
    const cliff = a.length ? attempt(() => cliffsDelta(a, b).delta) : noMatch;
    const judgement = judgeDifference({
      name,
      a: levelText(la),
      b: levelText(lb),
      diffs: a.map((x, k) => (x - b[k]) * scale),
      direction,
      margin,
      alpha: opts.alpha,
      comparisons: testable,
      unit: study.metric.unit,
      digits: study.metric.digits,
      cliffsDelta: cliff.ok ? cliff.value : undefined,
    });
    return {
      a: levelText(la),
      b: levelText(lb),
      n: a.length,
      diff: judgement.diff,
      mannWhitney: mw.ok
        ? { ok: true, value: { u: mw.value.u, p: mw.value.p, pAdjusted: mwAdj.get(i)! } }
        : mw,
      wilcoxon: wx.ok ? { ok: true, value: { p: wx.value.p, pAdjusted: wxAdj.get(i)! } } : wx,
      cliffsDelta: cliff,
      cohensD: a.length ? attempt(() => cohensD(a, b)) : noMatch,
      ci: judgement.ci
        ? { ok: true, value: judgement.ci }
        : { ok: false, reason: a.length ? "one matched pair" : "no matched runs" },
      judgement,
      better: judgement.better,
      verdict: judgement.text,
    };
  });
  return {
    factor,
    label: FACTOR_LABELS[factor],
    levels: levelSummaries.map((l) => l.level),
    matched: all.configs.length,
    dropped: all.dropped,
    levelSummaries,
    kruskal: usable ? attempt(() => kruskalWallis(groups)) : noMatch,
    anova: usable ? attempt(() => oneWayAnova(groups)) : noMatch,
    levene: usable ? attempt(() => levene(groups)) : noMatch,
    pairs,
    bound,
  };
}

/** The label of the nuisance term for runs that differ beyond the five factors (learning rate, epochs). */
export const OTHER_SETTINGS = "other settings";

/**
 * The design model of a study: the varying factors (a level a run lacks, such as the rank of
 * frozen, is its own level "n/a", which the model sees as aliased with that method instead of
 * dropping the run), their two-way interactions, and a main-effect-only "other settings" term
 * when runs differ beyond the factors. Null when no factor varies.
 */
export function designAnova(study: Study, opts: AnalysisOptions = {}): Attempt<DesignAnova> | null {
  if (study.sweepFactors && study.sweepLevels) return sweepDesignAnova(study, opts);
  if (study.varying.length === 0) return null;
  const others = new Map<string, string>();
  // Method options beyond targets and rank belong to the method (alpha of lora, none for ia3).
  const settingOf = (r: RunRecord) =>
    JSON.stringify(Object.entries(JSON.parse(otherKey(r.config))).filter(([k]) => k !== "opts"));
  for (const r of study.ok) {
    const k = settingOf(r);
    if (!others.has(k)) others.set(k, `setting ${others.size + 1}`);
  }
  const labels = study.varying.map((f) => FACTOR_LABELS[f]);
  const terms: string[][] = crossedTerms(labels);
  const factorNames = [...labels];
  if (others.size > 1) {
    factorNames.push(OTHER_SETTINGS);
    terms.push([OTHER_SETTINGS]);
  }
  const rows: FactorialRow[] = study.ok.map((r) => {
    const f = factorsOf(r.config);
    const levels: Record<string, string> = {};
    study.varying.forEach((k, i) => (levels[labels[i]] = levelText(f[k])));
    if (others.size > 1) levels[OTHER_SETTINGS] = others.get(settingOf(r))!;
    return { levels, y: valueOf(r, study.metric)! * study.metric.scale };
  });
  return fitDesign(rows, factorNames, terms, "run configs (bench/factors.ts)", opts);
}

/**
 * The design model with the sweep file's own factors and level names (`--sweep`): the factors
 * that vary (seed excluded: seeds are the replicates) and their pairs.
 */
function sweepDesignAnova(study: Study, opts: AnalysisOptions): Attempt<DesignAnova> | null {
  const factors = study.sweepFactors!;
  if (factors.length === 0) return null;
  const rows: FactorialRow[] = study.ok.map((r) => {
    const l = study.sweepLevels!.get(r.runId)!;
    return {
      levels: Object.fromEntries(factors.map((f) => [f, l[f]])),
      y: valueOf(r, study.metric)! * study.metric.scale,
    };
  });
  return fitDesign(rows, factors, crossedTerms(factors), `the sweep file ${study.sweepSource}`, opts);
}

function fitDesign(
  rows: FactorialRow[],
  factorNames: string[],
  terms: string[][],
  source: string,
  opts: AnalysisOptions,
): Attempt<DesignAnova> {
  return attempt(() => {
    const par = factorialAnova(rows, factorNames, terms);
    const normality = attempt(() => {
      const t = normalityTest(par.residuals);
      return { k2: t.k2, p: t.p };
    });
    const far = normality.ok && normality.value.p < (opts.alpha ?? 0.05);
    const art = far ? alignedRankAnova(rows, factorNames, terms) : null;
    const view = (es: FactorialEffect[]): DesignEffect[] =>
      es.map((e) => ({
        name: e.name,
        factors: e.factors,
        ss: e.ss,
        df: e.df,
        f: e.f,
        p: e.p,
        partialEtaSquared: e.partialEtaSquared,
      }));
    const nLevels = (name: string) => new Set(rows.map((r) => r.levels[name])).size;
    return {
      factors: factorNames,
      source,
      n: rows.length,
      ssType: "II" as const,
      balanced: par.balanced,
      errorDf: par.error.df,
      parametric: view(par.effects),
      normality,
      art: art ? view(art.effects) : null,
      used: far ? "aligned rank transform" as const : "parametric" as const,
      aliased: par.effects.filter((e) => e.df < e.factors.reduce((s, f) => s * (nLevels(f) - 1), 1))
        .map((e) => e.name),
    };
  });
}

/**
 * Significance letters for a retrieval study: per configuration, per-query scores of the
 * primary metric averaged over its seeds; configurations compared on the queries they all
 * share with paired randomization tests (Holm). More than 26 configurations: the best 26.
 */
export function retrievalSuperscripts(
  study: Study,
  opts: AnalysisOptions = {},
): Attempt<Superscripts> | null {
  if (study.task !== "retrieve" || study.groups.length < 2) return null;
  const field = study.metric.name;
  const perConfig = new Map<ConfigGroup, Map<string, number>>();
  let note: string | undefined;
  let groups = study.groups;
  if (groups.length > 26) {
    note = `${groups.length} configurations; letters for the best 26`;
    groups = groups.slice(0, 26);
  }
  for (const g of groups) {
    const maps = g.runs.map((r) => perItemScores(r, field));
    const ids = [...maps[0].keys()].filter((id) => maps.every((m) => m.has(id)));
    perConfig.set(g, new Map(ids.map((id) => [id, maps.reduce((s, m) => s + m.get(id)!, 0) / maps.length])));
  }
  const withItems = groups.filter((g) => perConfig.get(g)!.size > 0);
  if (withItems.length < 2) {
    return { ok: false, reason: `fewer than 2 configurations carry per-query ${field} scores` };
  }
  const common = [...perConfig.get(withItems[0])!.keys()].filter((id) =>
    withItems.every((g) => perConfig.get(g)!.has(id))
  )
    .sort();
  if (common.length < 2) {
    return { ok: false, reason: `configurations share ${common.length} queries; need 2 or more` };
  }
  const sign = study.metric.direction === "higher" ? 1 : -1;
  const runs: Record<string, number[]> = {};
  withItems.forEach((g, i) => (runs[String(i)] = common.map((id) => sign * perConfig.get(g)!.get(id)!)));
  return attempt(() => {
    const res = significanceSuperscripts(runs, {
      seed: opts.seed ?? 0,
      permutations: opts.permutations ?? 5000,
      alpha: opts.alpha,
    });
    const byConfig = new Map<string, { letter: string; beats: string[] }>();
    res.rows.forEach((row, i) => byConfig.set(withItems[i].key, { letter: row.letter, beats: row.beats }));
    const letter = (name: string) => res.rows[Number(name)].letter;
    return {
      metric: field,
      queries: common.length,
      byConfig,
      pairs: res.pairs.map((p) => ({
        a: letter(p.a),
        b: letter(p.b),
        diff: sign * p.diff,
        p: p.p,
        pAdjusted: p.pAdjusted,
      })),
      note,
    };
  });
}

/** Methods compared with every configuration when a study has them. */
export const BASELINE_METHODS = ["frozen", "full"] as const;

/**
 * Every configuration against each baseline method present: runs paired on seed, train size and
 * the config outside the method (method options, targets and rank ignored: the baseline has
 * none); quantization must match when the baseline was run at that level, and is ignored when the
 * baseline ran at one level only (a frozen fp32 backbone against QLoRA). Bonferroni over the
 * configurations of one baseline.
 */
export function baselineComparisons(study: Study, opts: AnalysisOptions = {}): BaselineComparison[] {
  const out: BaselineComparison[] = [];
  const margin = opts.margin ?? defaultMargin(study);
  const looseKey = (r: RunRecord) => {
    const f = factorsOf(r.config);
    const other = JSON.stringify(
      Object.entries(JSON.parse(otherKey(r.config))).filter(([k]) => k !== "opts"),
    );
    return JSON.stringify([r.config.seed, f.trainSize, other]);
  };
  for (const baseline of BASELINE_METHODS) {
    const base = study.ok.filter((r) => r.config.method === baseline);
    if (base.length === 0) continue;
    const byKey = new Map<string, RunRecord[]>();
    for (const r of base) byKey.set(looseKey(r), [...(byKey.get(looseKey(r)) ?? []), r]);
    const pairsOf = (g: ConfigGroup) =>
      g.runs.flatMap((r) => {
        const cands = byKey.get(looseKey(r)) ?? [];
        const quant = factorsOf(r.config).quant;
        const same = cands.filter((b) => factorsOf(b.config).quant === quant);
        const levels = new Set(cands.map((b) => factorsOf(b.config).quant));
        const match = same.length ? same : levels.size === 1 ? cands : [];
        if (match.length === 0) return [];
        const bv = match.reduce((s, b) => s + valueOf(b, study.metric)!, 0) / match.length;
        return [(valueOf(r, study.metric)! - bv) * study.metric.scale];
      });
    const others = study.groups.filter((g) => g.factors.method !== baseline);
    const diffs = others.map(pairsOf);
    const k = diffs.filter((d) => d.length >= 2).length;
    out.push({
      baseline,
      rows: others.map((g, i) => ({
        config: g.label,
        key: g.key,
        n: diffs[i].length,
        judgement: judgeDifference({
          name: `${g.label} vs ${baseline}`,
          a: g.label,
          b: baseline,
          diffs: diffs[i],
          direction: study.metric.direction,
          margin,
          alpha: opts.alpha,
          comparisons: k,
          unit: study.metric.unit,
          digits: study.metric.digits,
        }),
      })),
    });
  }
  return out;
}

/** Trivial baselines and collapsed runs of a classification study; null for other tasks or without labels. */
export function trivialSummary(study: Study): TrivialSummary | null {
  if (study.task !== "classify") return null;
  const scored = study.ok.map((r) => trivialScores(r)).filter((t): t is TrivialScores => t !== null);
  if (scored.length === 0) return null;
  const scores = scored.reduce((a, b) => (b.items > a.items ? b : a));
  const ref = study.metric.name === "accuracy"
    ? scores.majorityAccuracy
    : study.metric.name === "macroF1"
    ? scores.majorityMacroF1
    : undefined;
  return {
    scores,
    atOrBelowMajority: ref === undefined
      ? []
      : study.groups.filter((g) => g.primary.mean <= ref).map((g) => g.label),
    collapsed: study.ok.flatMap((r) => {
      const c = collapsed(r);
      return c ? [{ runId: r.runId, name: r.name, ...c }] : [];
    }),
  };
}

/** Every statistic of a study. */
export function analyzeStudy(study: Study, opts: AnalysisOptions = {}): StudyAnalysis {
  const notes: string[] = [study.metricNote, study.sweepNote].filter((n): n is string => n !== undefined);
  const seedGroups = study.groups.map((g) =>
    g.runs.map((r) => valueOf(r, study.metric)! * study.metric.scale)
  );
  const seedSd = seedGroups.some((g) => g.length > 1) ? pooledSd(seedGroups) : NaN;
  if (!Number.isFinite(seedSd)) {
    notes.push("no configuration has two or more seeds: seed noise cannot be estimated");
  }
  if (study.failed.length) notes.push(`${study.failed.length} failed run(s) excluded from the statistics`);
  if (study.incomplete.length) {
    notes.push(`${study.incomplete.length} run(s) without ${study.metric.name} excluded from the statistics`);
  }
  const factors = study.varying.map((f) => analyzeFactor(study, f, seedSd, opts)).filter((
    f,
  ): f is FactorAnalysis => f !== null);
  if (factors.length === 0) notes.push("no factor has two or more levels: nothing to compare");
  for (const f of factors) {
    for (const b of f.bound) {
      notes.push(
        `${b.option} of ${b.method} follows ${f.label} (${
          b.values.map(([l, v]) => `${JSON.stringify(v)} at ${levelText(l)}`).join(", ")
        }), so ${f.label} comparisons change it along with the level`,
      );
    }
  }
  const recorded = recordedBaselines(study);
  const baselines = baselineComparisons(study, opts);
  const margin = opts.margin ?? defaultMargin(study);
  const design = designAnova(study, opts);
  return {
    margin,
    baselines,
    trivial: trivialSummary(study),
    randomRanking: recorded.some((b) => b.name === "random")
      ? null
      : study.ok.map(randomRankingScores).filter((x): x is RandomRankingScores => x !== null)
        .reduce<RandomRankingScores | null>(
          (a, b) => (a === null || b.corpusSize > a.corpusSize ? b : a),
          null,
        ),
    recorded,
    coverage: coverageRows(study),
    factors,
    design,
    hypotheses: answerHypotheses(study, {
      margin,
      alpha: opts.alpha,
      design: design?.ok ? design.value : null,
    }),
    superscripts: retrievalSuperscripts(study, opts),
    forgetting: forgettingView(study, baselines),
    seedSd,
    notes,
  };
}
