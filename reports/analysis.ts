/**
 * The statistics section of a report: for each factor a study varies, the runs are matched on
 * everything else (other factors, other config fields, seed) with matchByFactor, then tested.
 * Every test that cannot run on the data (too few values, all equal) is reported with its reason
 * instead of failing the report.
 * @module
 */
import type { RunRecord } from "../bench/record.ts";
import {
  bootstrapMeanCI,
  cliffsDelta,
  cohensD,
  describeComparison,
  holm,
  kruskalWallis,
  levene,
  mannWhitneyU,
  matchByFactor,
  oneWayAnova,
  pooledSd,
  type Row,
  significanceSuperscripts,
  twoWayAnova,
  wilcoxonSignedRank,
  withinSeedNoise,
} from "./stats/mod.ts";
import {
  type ConfigGroup,
  type Factor,
  FACTOR_LABELS,
  FACTORS,
  factorsOf,
  type Level,
  levelsOf,
  otherKey,
  perItemScores,
  type Study,
  valueOf,
} from "./data.ts";
import { Rng } from "../models/util/rng.ts";

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
  /** Bootstrap CI of the mean paired difference (scaled). */
  ci: Attempt<{ lo: number; hi: number }>;
  /** Which level is better (by direction), or null when within seed noise. */
  better: string | null;
  withinNoise: boolean;
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
}

/** A balanced two-factor crossing found in the data. */
export interface TwoWayResult {
  a: string;
  b: string;
  levelsA: string[];
  levelsB: string[];
  replicates: number;
  /** The held-fixed setting it was found at. */
  at: string;
  effects: { name: string; f: number; df: number; p: number; partialEtaSquared: number }[];
  errorDf: number;
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

/** Statistics of one study. */
export interface StudyAnalysis {
  factors: FactorAnalysis[];
  twoWay: TwoWayResult[];
  superscripts: Attempt<Superscripts> | null;
  /** Pooled SD across seeds of the same configuration (scaled), the seed-noise yardstick. */
  seedSd: number;
  notes: string[];
}

/** Display form of a level (null never reaches here: such runs are left out of the factor). */
export function levelText(l: Level): string {
  return l === null ? "n/a" : String(l);
}

/** One matchByFactor row per run: factor columns, other config, seed, metric. */
function rowsFor(runs: readonly RunRecord[], study: Study, factor: Factor): Row[] {
  const rows: Row[] = [];
  for (const r of runs) {
    const f = factorsOf(r.config);
    if (f[factor] === null) continue;
    const row: Record<string, string | number | boolean> = {};
    for (const k of FACTORS) row[k] = f[k] === null ? "n/a" : f[k] as string | number;
    row.other = otherKey(r.config);
    row.seed = r.config.seed;
    row.value = valueOf(r, study.metric)!;
    rows.push(row);
  }
  return rows;
}

/** Analyse one factor of a study. */
export function analyzeFactor(
  study: Study,
  factor: Factor,
  seedSd: number,
  opts: AnalysisOptions = {},
): FactorAnalysis | null {
  const rows = rowsFor(study.ok, study, factor);
  const levels = levelsOf(study.ok, factor);
  if (levels.length < 2 || rows.length === 0) return null;
  const { scale, direction } = study.metric;
  const rng = new Rng(opts.seed ?? 0).fork(`${study.id}|${factor}`);
  const resamples = opts.resamples ?? 2000;
  const all = matchByFactor(rows, factor);
  const groups = all.groups;
  const usable = all.configs.length > 0;
  const noMatch = { ok: false as const, reason: "no configuration is present at every level" };
  const levelSummaries: LevelSummary[] = all.levels.map((l, i) => ({
    level: String(l),
    n: groups[i].length,
    mean: usable ? groups[i].reduce((s, x) => s + x, 0) / groups[i].length * scale : NaN,
    ci: usable
      ? attempt(() => {
        const c = bootstrapMeanCI(groups[i], { seed: rng.fork(`ci|${l}`).seed, resamples });
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
    const sub = rows.filter((r) => r[factor] === la || r[factor] === lb);
    const m = matchByFactor(sub, factor);
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
  const pairs: PairResult[] = raw.map(({ la, lb, a, b }, i): PairResult => {
    const name = `${FACTOR_LABELS[factor]} ${levelText(la)} vs ${levelText(lb)}`;
    const mw = mwRaw[i];
    const wx = wxRaw[i];
    const diff = a.length
      ? (a.reduce((s, x) => s + x, 0) - b.reduce((s, x) => s + x, 0)) / a.length * scale
      : NaN;
    const cliff = a.length ? attempt(() => cliffsDelta(a, b).delta) : noMatch;
    const pAdjusted = wx.ok ? wxAdj.get(i) : mw.ok ? mwAdj.get(i) : undefined;
    const cmp = { diff, pAdjusted, seedSd: Number.isFinite(seedSd) ? seedSd : undefined, alpha: opts.alpha };
    const withinNoise = Number.isFinite(diff) ? withinSeedNoise(cmp) : true;
    const better = withinNoise || diff === 0
      ? null
      : (diff > 0) === (direction === "higher")
      ? levelText(la)
      : levelText(lb);
    const verdict = Number.isFinite(diff)
      ? describeComparison({
        name,
        ...cmp,
        correction: wx.ok ? "Holm (Wilcoxon)" : "Holm (Mann-Whitney)",
        cliffsDelta: cliff.ok ? cliff.value : undefined,
        unit: study.metric.unit,
        digits: study.metric.digits,
      }) + (better ? `; ${better} is better (${direction} is better)` : "")
      : `${name}: no matched runs`;
    return {
      a: levelText(la),
      b: levelText(lb),
      n: a.length,
      diff,
      mannWhitney: mw.ok
        ? { ok: true, value: { u: mw.value.u, p: mw.value.p, pAdjusted: mwAdj.get(i)! } }
        : mw,
      wilcoxon: wx.ok ? { ok: true, value: { p: wx.value.p, pAdjusted: wxAdj.get(i)! } } : wx,
      cliffsDelta: cliff,
      cohensD: a.length ? attempt(() => cohensD(a, b)) : noMatch,
      ci: a.length
        ? attempt(() => {
          const c = bootstrapMeanCI(a.map((x, k) => (x - b[k]) * scale), {
            seed: rng.fork(`pair|${i}`).seed,
            resamples,
          });
          return { lo: c.lo, hi: c.hi };
        })
        : noMatch,
      better,
      withinNoise,
      verdict,
    };
  });
  return {
    factor,
    label: FACTOR_LABELS[factor],
    levels: all.levels.map(String),
    matched: all.configs.length,
    dropped: all.dropped,
    levelSummaries,
    kruskal: usable ? attempt(() => kruskalWallis(groups)) : noMatch,
    anova: usable ? attempt(() => oneWayAnova(groups)) : noMatch,
    levene: usable ? attempt(() => levene(groups)) : noMatch,
    pairs,
  };
}

/**
 * Two-way ANOVA for each pair of varying factors where some held-fixed setting of the other
 * columns crosses them completely with the same number (>= 2) of seeds in every cell; the
 * largest such crossing is reported.
 */
export function twoWayFor(study: Study): TwoWayResult[] {
  const out: TwoWayResult[] = [];
  const vary = study.varying;
  for (let x = 0; x < vary.length; x++) {
    for (let y = x + 1; y < vary.length; y++) {
      const [fa, fb] = [vary[x], vary[y]];
      const bySetting = new Map<string, RunRecord[]>();
      for (const r of study.ok) {
        const f = factorsOf(r.config);
        if (f[fa] === null || f[fb] === null) continue;
        const rest = FACTORS.filter((k) => k !== fa && k !== fb).map((k) =>
          `${FACTOR_LABELS[k]} ${levelText(f[k])}`
        );
        const key = JSON.stringify([rest.join(", "), otherKey(r.config)]);
        if (!bySetting.has(key)) bySetting.set(key, []);
        bySetting.get(key)!.push(r);
      }
      let best: TwoWayResult | null = null;
      let bestSize = 0;
      for (const [key, runs] of bySetting) {
        const la = levelsOf(runs, fa);
        const lb = levelsOf(runs, fb);
        if (la.length < 2 || lb.length < 2) continue;
        const cells = la.map((a) =>
          lb.map((b) =>
            runs.filter((r) => factorsOf(r.config)[fa] === a && factorsOf(r.config)[fb] === b)
              .map((r) => valueOf(r, study.metric)!)
          )
        );
        const n = cells[0][0].length;
        if (n < 2 || cells.some((row) => row.some((c) => c.length !== n))) continue;
        const size = la.length * lb.length * n;
        if (size <= bestSize) continue;
        const res = attempt(() => twoWayAnova(cells));
        if (!res.ok) continue;
        const r = res.value;
        const eff = (name: string, e: typeof r.a) => ({
          name,
          f: e.f,
          df: e.df,
          p: e.p,
          partialEtaSquared: e.partialEtaSquared,
        });
        bestSize = size;
        best = {
          a: FACTOR_LABELS[fa],
          b: FACTOR_LABELS[fb],
          levelsA: la.map(levelText),
          levelsB: lb.map(levelText),
          replicates: n,
          at: JSON.parse(key)[0],
          effects: [
            eff(FACTOR_LABELS[fa], r.a),
            eff(FACTOR_LABELS[fb], r.b),
            eff(`${FACTOR_LABELS[fa]} × ${FACTOR_LABELS[fb]}`, r.interaction),
          ],
          errorDf: r.error.df,
        };
      }
      if (best) out.push(best);
    }
  }
  return out;
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

/** Every statistic of a study. */
export function analyzeStudy(study: Study, opts: AnalysisOptions = {}): StudyAnalysis {
  const notes: string[] = [];
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
  return {
    factors,
    twoWay: twoWayFor(study),
    superscripts: retrievalSuperscripts(study, opts),
    seedSd,
    notes,
  };
}
