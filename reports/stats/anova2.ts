/**
 * Two-way analysis of variance for a balanced, fully crossed design with replication.
 * @module
 */
import { checkSample } from "./describe.ts";
import { fSf } from "./dists.ts";

/** One effect row of the two-way ANOVA table. */
export interface AnovaEffect {
  ss: number;
  df: number;
  ms: number;
  f: number;
  p: number;
  /** `SS_effect / SS_total`. */
  etaSquared: number;
  /** `SS_effect / (SS_effect + SS_error)`. */
  partialEtaSquared: number;
}

/** Result of {@link twoWayAnova}. */
export interface TwoWayAnovaResult {
  a: AnovaEffect;
  b: AnovaEffect;
  interaction: AnovaEffect;
  error: { ss: number; df: number; ms: number };
  ssTotal: number;
}

/**
 * Two-way ANOVA, balanced design: `cells[i][j]` holds the `n` replicates at level i of factor A
 * and level j of factor B (`a x b` cells, every cell the same `n >= 2`). With means
 * `m_i..`, `m_.j.`, `m_ij.`, grand mean `m`:
 * `SS_A = b n sum_i (m_i.. - m)^2`, `SS_B = a n sum_j (m_.j. - m)^2`,
 * `SS_AB = n sum_ij (m_ij. - m_i.. - m_.j. + m)^2`, `SS_E = sum_ijk (x_ijk - m_ij.)^2`;
 * df `a-1`, `b-1`, `(a-1)(b-1)`, `ab(n-1)`; each `F = MS / MS_E`, `p = P(F(df, df_E) >= F)`.
 * Throws on an unbalanced design (cells of different sizes or a missing cell), where these
 * sums of squares no longer partition the total.
 */
export function twoWayAnova(cells: readonly (readonly (readonly number[])[])[]): TwoWayAnovaResult {
  if (!Array.isArray(cells) || cells.length < 2) {
    throw new Error("twoWayAnova needs at least 2 levels of factor A");
  }
  const a = cells.length;
  const b = cells[0].length;
  if (b < 2) throw new Error("twoWayAnova needs at least 2 levels of factor B");
  const n = cells[0][0]?.length ?? 0;
  for (let i = 0; i < a; i++) {
    if (cells[i].length !== b) {
      throw new Error(
        `twoWayAnova: unbalanced design, A level ${i} has ${cells[i].length} B levels, expected ${b}`,
      );
    }
    for (let j = 0; j < b; j++) {
      checkSample(cells[i][j], `twoWayAnova cell [${i}][${j}]`, 1);
      if (cells[i][j].length !== n) {
        throw new Error(
          `twoWayAnova: unbalanced design, cell [${i}][${j}] has ${cells[i][j].length} values, expected ${n}`,
        );
      }
    }
  }
  if (n < 2) throw new Error("twoWayAnova needs at least 2 replicates per cell to estimate error");

  const cellMean: number[][] = cells.map((row) =>
    row.map((c: readonly number[]) => c.reduce((s: number, x: number) => s + x, 0) / n)
  );
  const rowMean = cellMean.map((row) => row.reduce((s, x) => s + x, 0) / b);
  const colMean = Array.from({ length: b }, (_, j) => cellMean.reduce((s, row) => s + row[j], 0) / a);
  const grand = rowMean.reduce((s, x) => s + x, 0) / a;

  let ssA = 0, ssB = 0, ssAB = 0, ssE = 0, ssT = 0;
  for (let i = 0; i < a; i++) ssA += b * n * (rowMean[i] - grand) ** 2;
  for (let j = 0; j < b; j++) ssB += a * n * (colMean[j] - grand) ** 2;
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      ssAB += n * (cellMean[i][j] - rowMean[i] - colMean[j] + grand) ** 2;
      for (const x of cells[i][j]) {
        ssE += (x - cellMean[i][j]) ** 2;
        ssT += (x - grand) ** 2;
      }
    }
  }
  const dfE = a * b * (n - 1);
  const msE = ssE / dfE;
  const effect = (ss: number, df: number): AnovaEffect => {
    const ms = ss / df;
    const f = ms / msE;
    const p = Number.isNaN(f) ? NaN : f === Infinity ? 0 : fSf(f, df, dfE);
    return { ss, df, ms, f, p, etaSquared: ss / ssT, partialEtaSquared: ss / (ss + ssE) };
  };
  return {
    a: effect(ssA, a - 1),
    b: effect(ssB, b - 1),
    interaction: effect(ssAB, (a - 1) * (b - 1)),
    error: { ss: ssE, df: dfE, ms: msE },
    ssTotal: ssT,
  };
}
