/**
 * One linear model over a whole factorial design: main effects and two-way interactions of every
 * crossed factor, seeds as replicates, type II sums of squares by model comparison (so unbalanced
 * and partly crossed designs, where a factor does not apply to some levels of another, are
 * handled without slicing), partial eta squared per effect, a D'Agostino-Pearson check of the
 * residuals and the aligned-rank-transform ANOVA (Wobbrock et al. 2011) for when they are far
 * from normal.
 *
 * Type II: the sum of squares of a term T is `RSS(B) - RSS(B + T)` where B holds every term that
 * does not contain T's factors (for a main effect A: the other main effects and the interactions
 * without A; for A x B: every other term). Its df is `rank(B + T) - rank(B)`, so a term that is
 * partly aliased (rank of `frozen`, which has none) keeps only its estimable df, and one fully
 * aliased has df 0 and is reported as not estimable. The error is the residual of the full model
 * (`n - rank`), so with more than two factors it also holds the three-way and higher
 * interactions. These are the numbers R's `car::Anova(type = 2)` and statsmodels'
 * `anova_lm(typ=2)` give; type II does not depend on the coding of the factors, type III would.
 * @module
 */
import { chiSquareSf, fSf } from "./dists.ts";
import { rankAverage } from "./describe.ts";

/** One observation: a level of every factor, and the response. */
export interface FactorialRow {
  levels: Record<string, string>;
  y: number;
}

/** One effect row of the ANOVA table. */
export interface FactorialEffect {
  /** `A` or `A × B`. */
  name: string;
  /** The factors of the term (one for a main effect, two for an interaction). */
  factors: string[];
  ss: number;
  /** Estimable degrees of freedom (0: aliased with the other terms, not testable). */
  df: number;
  ms: number;
  f: number;
  p: number;
  /** `SS_effect / (SS_effect + SS_error)`. */
  partialEtaSquared: number;
}

/** Result of {@link factorialAnova}. */
export interface FactorialResult {
  /** Always "II": see the module doc. */
  ssType: "II";
  n: number;
  /** Rank of the full model's design matrix (intercept included). */
  rank: number;
  effects: FactorialEffect[];
  error: { ss: number; df: number; ms: number };
  /** Residuals of the full model, in row order. */
  residuals: number[];
  /** Whether every cell of every crossed pair of factors holds the same number of rows. */
  balanced: boolean;
}

/** The terms of a model: every factor alone, then (when `interactions`) every pair, in order. */
export function crossedTerms(factors: readonly string[], interactions = true): string[][] {
  const terms = factors.map((f) => [f]);
  if (interactions) {
    for (let i = 0; i < factors.length; i++) {
      for (let j = i + 1; j < factors.length; j++) terms.push([factors[i], factors[j]]);
    }
  }
  return terms;
}

/** Relative size below which a column is taken as a combination of the columns before it. */
const RANK_TOL = 1e-9;

/**
 * Least squares by modified Gram-Schmidt with one re-orthogonalisation: columns that add nothing
 * (norm after projection below RANK_TOL of their own norm) are dropped, so a rank-deficient design
 * still has its residual and its rank.
 */
function leastSquares(
  columns: readonly Float64Array[],
  y: readonly number[],
): { rss: number; rank: number; residuals: number[] } {
  const basis: Float64Array[] = [];
  const n = y.length;
  const dot = (a: Float64Array, b: Float64Array | readonly number[]) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  };
  for (const col of columns) {
    const v = Float64Array.from(col);
    const norm0 = Math.sqrt(dot(v, v));
    if (norm0 === 0) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (const q of basis) {
        const c = dot(q, v);
        for (let i = 0; i < n; i++) v[i] -= c * q[i];
      }
    }
    const norm = Math.sqrt(dot(v, v));
    if (norm <= RANK_TOL * norm0) continue;
    for (let i = 0; i < n; i++) v[i] /= norm;
    basis.push(v);
  }
  const r = [...y];
  for (let pass = 0; pass < 2; pass++) {
    for (const q of basis) {
      let c = 0;
      for (let i = 0; i < n; i++) c += q[i] * r[i];
      for (let i = 0; i < n; i++) r[i] -= c * q[i];
    }
  }
  return { rss: r.reduce((s, x) => s + x * x, 0), rank: basis.length, residuals: r };
}

/** Levels of each factor in first-seen order. */
function levelsByFactor(rows: readonly FactorialRow[], factors: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of factors) {
    const seen: string[] = [];
    for (const r of rows) {
      const l = r.levels[f];
      if (typeof l !== "string") throw new Error(`factorialAnova: a row has no level of factor '${f}'`);
      if (!seen.includes(l)) seen.push(l);
    }
    out.set(f, seen);
  }
  return out;
}

/**
 * Design columns of a term, dummy (treatment) coded: one column per non-first level of a main
 * effect, and the products of those columns for an interaction.
 */
function termColumns(
  rows: readonly FactorialRow[],
  term: readonly string[],
  levels: Map<string, string[]>,
): Float64Array[] {
  let cols: Float64Array[] = [new Float64Array(rows.length).fill(1)];
  for (const f of term) {
    const next: Float64Array[] = [];
    for (const base of cols) {
      for (const l of levels.get(f)!.slice(1)) {
        next.push(Float64Array.from(rows, (r, i) => (r.levels[f] === l ? base[i] : 0)));
      }
    }
    cols = next;
  }
  return cols;
}

const key = (t: readonly string[]) => t.join("\u0000");
const contains = (outer: readonly string[], inner: readonly string[]) =>
  inner.every((f) => outer.includes(f));

/**
 * Type II factorial ANOVA of `rows` with the given `terms` (default: {@link crossedTerms} of
 * `factors`). Needs at least one error degree of freedom (replicates: seeds). F of a term with df 0
 * is NaN (not estimable); `F = MS / MS_error`, `p = P(F(df, df_error) >= F)`.
 */
export function factorialAnova(
  rows: readonly FactorialRow[],
  factors: readonly string[],
  terms: readonly (readonly string[])[] = crossedTerms(factors),
): FactorialResult {
  if (rows.length === 0) throw new Error("factorialAnova needs at least one row");
  for (const r of rows) {
    if (typeof r.y !== "number" || !Number.isFinite(r.y)) {
      throw new Error(`factorialAnova: non-finite response ${r.y}`);
    }
  }
  for (const t of terms) {
    for (const f of t) {
      if (!factors.includes(f)) throw new Error(`factorialAnova: term uses unknown factor '${f}'`);
    }
  }
  const levels = levelsByFactor(rows, factors);
  const y = rows.map((r) => r.y);
  const intercept = new Float64Array(rows.length).fill(1);
  const cols = new Map(terms.map((t) => [key(t), termColumns(rows, t, levels)]));
  const fit = (ts: readonly (readonly string[])[]) =>
    leastSquares([intercept, ...ts.flatMap((t) => cols.get(key(t))!)], y);
  const full = fit(terms);
  const dfE = rows.length - full.rank;
  if (dfE < 1) {
    throw new Error(
      `factorialAnova: no error degrees of freedom (${rows.length} runs, model rank ${full.rank}); add seeds`,
    );
  }
  const msE = full.rss / dfE;
  const effects = terms.map((t): FactorialEffect => {
    const base = terms.filter((u) => u !== t && !contains(u, t));
    const without = fit(base);
    const withT = fit([...base, t]);
    const df = withT.rank - without.rank;
    // Differences of sums of squares below rounding are zero, not a tiny negative effect.
    const ss = df === 0 ? 0 : Math.max(0, without.rss - withT.rss);
    const ms = df === 0 ? NaN : ss / df;
    const f = df === 0 ? NaN : ms / msE;
    const p = Number.isNaN(f) ? NaN : f === Infinity ? 0 : fSf(f, df, dfE);
    return {
      name: t.join(" × "),
      factors: [...t],
      ss,
      df,
      ms,
      f,
      p,
      partialEtaSquared: df === 0 ? NaN : ss / (ss + full.rss),
    };
  });
  return {
    ssType: "II",
    n: rows.length,
    rank: full.rank,
    effects,
    error: { ss: full.rss, df: dfE, ms: msE },
    residuals: full.residuals,
    balanced: isBalanced(rows, factors),
  };
}

/** Whether every pair of factors is fully crossed with equal cell counts (and each factor alone too). */
function isBalanced(rows: readonly FactorialRow[], factors: readonly string[]): boolean {
  const levels = levelsByFactor(rows, factors);
  const cellCounts = (fs: string[]) => {
    const counts = new Map<string, number>();
    for (const r of rows) {
      counts.set(
        key(fs.map((f) => r.levels[f])),
        (counts.get(key(fs.map((f) => r.levels[f]))) ?? 0) + 1,
      );
    }
    const expected = fs.reduce((s, f) => s * levels.get(f)!.length, 1);
    const vals = [...counts.values()];
    return counts.size === expected && vals.every((v) => v === vals[0]);
  };
  return crossedTerms(factors).every((t) => cellCounts(t));
}

/** Result of {@link normalityTest}. */
export interface NormalityResult {
  /** D'Agostino's skewness z. */
  zSkew: number;
  /** Anscombe-Glynn kurtosis z. */
  zKurtosis: number;
  /** `K² = zSkew² + zKurtosis²`. */
  k2: number;
  /** `P(chi2(2) >= K²)`. */
  p: number;
}

/**
 * D'Agostino-Pearson omnibus normality test (D'Agostino 1971, Anscombe & Glynn 1983, D'Agostino &
 * Pearson 1973), as scipy.stats.normaltest: z of the sample skewness `sqrt(b1)` and of the
 * kurtosis `b2`, `K² = z1² + z2²` against chi2(2). Needs 20 values or more (scipy warns below 20:
 * the kurtosis approximation is poor there).
 */
export function normalityTest(xs: readonly number[]): NormalityResult {
  const n = xs.length;
  if (n < 20) throw new Error(`normality test needs at least 20 values, got ${n}`);
  const m = xs.reduce((s, x) => s + x, 0) / n;
  let m2 = 0, m3 = 0, m4 = 0;
  for (const x of xs) {
    const d = x - m;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  if (m2 === 0) throw new Error("normality test: all values are equal");
  const b1 = m3 / m2 ** 1.5;
  const b2 = m4 / (m2 * m2);
  // Skewness (D'Agostino 1971): Johnson S_U transform of sqrt(b1).
  let y = b1 * Math.sqrt(((n + 1) * (n + 3)) / (6 * (n - 2)));
  const beta2 = (3 * (n * n + 27 * n - 70) * (n + 1) * (n + 3)) / ((n - 2) * (n + 5) * (n + 7) * (n + 9));
  const w2 = -1 + Math.sqrt(2 * (beta2 - 1));
  const delta = 1 / Math.sqrt(0.5 * Math.log(w2));
  const alpha = Math.sqrt(2 / (w2 - 1));
  if (y === 0) y = 1;
  const zSkew = delta * Math.log(y / alpha + Math.sqrt((y / alpha) ** 2 + 1));
  // Kurtosis (Anscombe & Glynn 1983).
  const e = (3 * (n - 1)) / (n + 1);
  const varb2 = (24 * n * (n - 2) * (n - 3)) / ((n + 1) * (n + 1) * (n + 3) * (n + 5));
  const x = (b2 - e) / Math.sqrt(varb2);
  const sqrtBeta1 = ((6 * (n * n - 5 * n + 2)) / ((n + 7) * (n + 9))) *
    Math.sqrt((6 * (n + 3) * (n + 5)) / (n * (n - 2) * (n - 3)));
  const a = 6 + (8 / sqrtBeta1) * (2 / sqrtBeta1 + Math.sqrt(1 + 4 / sqrtBeta1 ** 2));
  const term1 = 1 - 2 / (9 * a);
  const denom = 1 + x * Math.sqrt(2 / (a - 4));
  const term2 = Math.sign(denom) * Math.cbrt((1 - 2 / a) / Math.abs(denom));
  const zKurtosis = (term1 - term2) / Math.sqrt(2 / (9 * a));
  const k2 = zSkew * zSkew + zKurtosis * zKurtosis;
  return { zSkew, zKurtosis, k2, p: chiSquareSf(k2, 2) };
}

/**
 * Aligned-rank-transform ANOVA (Wobbrock, Findlater, Gergle & Higgins, CHI 2011; ARTool): for each
 * term, the response is aligned (the residual from the cell means over every factor, plus the
 * term's estimated effect from marginal means: `m_A(i) - m` for a main effect,
 * `m_AB(ij) - m_A(i) - m_B(j) + m` for an interaction), ranked (ties averaged), and the same
 * type II model is fitted to the ranks; only that term's row is kept. Partial eta squared is
 * computed on the ranks. The result's `error` keeps the shared df only (each term has its own
 * error SS on its own ranks); `residuals` are those of the model on the raw response.
 */
export function alignedRankAnova(
  rows: readonly FactorialRow[],
  factors: readonly string[],
  terms: readonly (readonly string[])[] = crossedTerms(factors),
): FactorialResult {
  if (rows.length === 0) throw new Error("alignedRankAnova needs at least one row");
  const meansBy = (fs: readonly string[]) => {
    const acc = new Map<string, { s: number; n: number }>();
    for (const r of rows) {
      const k = key(fs.map((f) => r.levels[f]));
      const a = acc.get(k) ?? { s: 0, n: 0 };
      a.s += r.y;
      a.n++;
      acc.set(k, a);
    }
    return (r: FactorialRow) => {
      const a = acc.get(key(fs.map((f) => r.levels[f])))!;
      return a.s / a.n;
    };
  };
  const cell = meansBy(factors);
  const grand = rows.reduce((s, r) => s + r.y, 0) / rows.length;
  let last: FactorialResult | null = null;
  const effects = terms.map((t) => {
    let estimate: (r: FactorialRow) => number;
    if (t.length === 1) {
      const ma = meansBy(t);
      estimate = (r) => ma(r) - grand;
    } else if (t.length === 2) {
      const ma = meansBy([t[0]]), mb = meansBy([t[1]]), mab = meansBy(t);
      estimate = (r) => mab(r) - ma(r) - mb(r) + grand;
    } else {
      throw new Error("alignedRankAnova: terms of one or two factors only");
    }
    const aligned = rows.map((r) => r.y - cell(r) + estimate(r));
    const ranks = rankAverage(aligned).ranks;
    const res = factorialAnova(rows.map((r, i) => ({ levels: r.levels, y: ranks[i] })), factors, terms);
    last = res;
    return res.effects[terms.indexOf(t)];
  });
  const base = last ?? factorialAnova(rows, factors, terms);
  // Each term is tested against the error of its own aligned ranks: one shared error SS does not exist.
  return {
    ...base,
    effects,
    error: { ss: NaN, df: base.error.df, ms: NaN },
    residuals: factorialAnova(rows, factors, terms).residuals,
  };
}
