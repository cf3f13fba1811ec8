/**
 * Spectral entropy of attention matrices as a function of sequence length, and its fit to the
 * area-law-like form S(l) = a + b ln l, to compare a frozen model with an adapted one.
 * @module
 */
import { checkMatrix, shannonEntropy, squaredSingularValues } from "./linalg.ts";

/** Attention of every head at one sequence length. */
export interface AttentionSample {
  /** Sequence length l = T. */
  length: number;
  /** One row-major T x T row-stochastic matrix per head. */
  heads: Array<Float32Array | Float64Array>;
}

/** Tolerance on |row sum - 1|, loose enough for float32 softmax output. */
const ROW_SUM_TOL = 1e-3;

/**
 * Entropy of the normalised squared singular values of one T x T attention matrix A:
 * S = -sum_i p_i ln p_i, p_i = s_i^2 / ||A||_F^2. Ranges from 0 (rank 1, e.g. uniform
 * attention) to ln T (A orthogonal up to scale, e.g. each token attending to itself).
 * Throws unless A is non-negative with rows summing to 1.
 */
export function attentionSpectralEntropy(attn: Float32Array | Float64Array, length: number): number {
  const a = checkMatrix(attn, [length, length], "attention matrix");
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (let j = 0; j < length; j++) {
      const v = a[i * length + j];
      if (v < 0) throw new Error(`attention matrix has a negative weight ${v} at (${i}, ${j})`);
      sum += v;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOL) throw new Error(`attention row ${i} sums to ${sum}, not 1`);
  }
  return shannonEntropy(squaredSingularValues(a, length, length));
}

/** Entropy curve over lengths, per head and head-averaged. */
export interface EntropyCurve {
  /** Sequence lengths, ascending. */
  lengths: number[];
  /** perHead[i][h] = S of head h at lengths[i]. */
  perHead: number[][];
  /** mean[i] = average of perHead[i] over heads. */
  mean: number[];
}

/** Spectral entropy of every head at every length, sorted by length. */
export function attentionEntropyCurve(samples: AttentionSample[]): EntropyCurve {
  if (samples.length === 0) throw new Error("no attention samples given");
  const sorted = [...samples].sort((x, y) => x.length - y.length);
  const perHead = sorted.map((s, i) => {
    if (!Number.isInteger(s.length) || s.length < 1) {
      throw new Error(`sample ${i} has invalid length ${s.length}`);
    }
    if (s.heads.length === 0) throw new Error(`sample at length ${s.length} has no heads`);
    return s.heads.map((h) => attentionSpectralEntropy(h, s.length));
  });
  return {
    lengths: sorted.map((s) => s.length),
    perHead,
    mean: perHead.map((hs) => hs.reduce((x, y) => x + y, 0) / hs.length),
  };
}

/** Least-squares fit S(l) = a + b ln l. */
export interface LogFit {
  a: number;
  b: number;
  /** Coefficient of determination 1 - SS_res / SS_tot (1 when S is constant and fitted exactly). */
  r2: number;
}

/**
 * Ordinary least squares of S on x = ln l: b = sum (x - xbar)(S - Sbar) / sum (x - xbar)^2,
 * a = Sbar - b xbar, R^2 = 1 - sum (S - a - b x)^2 / sum (S - Sbar)^2.
 * Needs at least two distinct positive lengths.
 */
export function fitLogLaw(lengths: number[], values: number[]): LogFit {
  if (lengths.length !== values.length) {
    throw new Error(`fit needs as many values as lengths, got ${values.length} and ${lengths.length}`);
  }
  const n = lengths.length;
  const x = lengths.map((l) => {
    if (!(l > 0) || !Number.isFinite(l)) throw new Error(`fit lengths must be positive, got ${l}`);
    return Math.log(l);
  });
  for (const v of values) if (!Number.isFinite(v)) throw new Error(`fit values must be finite, got ${v}`);
  const xbar = x.reduce((s, v) => s + v, 0) / n;
  const ybar = values.reduce((s, v) => s + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - xbar) ** 2;
    sxy += (x[i] - xbar) * (values[i] - ybar);
    syy += (values[i] - ybar) ** 2;
  }
  if (!(sxx > 0)) throw new Error("fit needs at least two distinct lengths");
  const b = sxy / sxx;
  const a = ybar - b * xbar;
  let ssRes = 0;
  for (let i = 0; i < n; i++) ssRes += (values[i] - a - b * x[i]) ** 2;
  // A constant S fitted exactly has SS_tot = 0; call that a perfect fit rather than NaN.
  const r2 = syy > 0 ? 1 - ssRes / syy : (ssRes === 0 ? 1 : 0);
  return { a, b, r2 };
}

/** One model's entropy curve and the fit of its head-averaged entropy. */
export interface ModelAttentionEntropy {
  curve: EntropyCurve;
  fit: LogFit;
}

/**
 * Curves and fits S(l) = a + b ln l (on head-averaged entropy) for a frozen and an adapted
 * model, plus the slope change deltaB = b_adapted - b_frozen (how the adapter changes the
 * growth of attention's spectral entropy with context length).
 */
export function compareAttentionEntropy(
  frozen: AttentionSample[],
  adapted: AttentionSample[],
): { frozen: ModelAttentionEntropy; adapted: ModelAttentionEntropy; deltaB: number } {
  const f = attentionEntropyCurve(frozen);
  const d = attentionEntropyCurve(adapted);
  const ff = fitLogLaw(f.lengths, f.mean);
  const df = fitLogLaw(d.lengths, d.mean);
  return { frozen: { curve: f, fit: ff }, adapted: { curve: d, fit: df }, deltaB: df.b - ff.b };
}
