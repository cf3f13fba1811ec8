/**
 * Data-driven starts of the LoRA family, as Hugging Face PEFT's `init_lora_weights` values (PEFT
 * 0.20, src/peft/tuners/lora/{eva,corda,loraga}.py and `LoraLayer.corda_init`/`lora_grad_init`):
 * `--opt init=eva|corda|lora_ga` of `lora` and `rslora`, from the harness's recorded layer inputs
 * or gradient estimate (`MethodContext.layerActivations` / `weightGradients`). Float64 throughout.
 *
 * - `eva` (Paridon et al. 2024): A0 = the top principal directions of the layer's inputs X [n, in]
 *   (right-singular vectors of the centered X, signs as sklearn's svd_flip: each row's largest
 *   |entry| positive), B0 = 0, base unchanged. Ranks are redistributed: each layer offers its first
 *   round(rho r) explained-variance ratios S_i^2 / ||X_c||_F^2, the r * n_layers largest over all
 *   layers win (PEFT's budget is r per layer, rho caps a layer at round(rho r)), a layer winning 0
 *   is not adapted; `adjust_scaling_factors` sets alpha_l = alpha r_l / r. `whiten` divides A0's
 *   rows by sqrt(S_i). PEFT runs an incremental PCA over minibatches until consecutive components
 *   agree (cosine >= tau); here one exact SVD of the whole recorded sample, the fixed point that
 *   incremental PCA reaches when it has seen the same rows (so tau has no role and is not an option),
 *   taken as the top eigenvectors of X_c^T X_c.
 * - `corda` (Yang et al. 2024): C = mean over sequences of X_i^T X_i / max(X_i)^2 (PEFT's hook),
 *   damped C_f = C + d mean(diag C) I with d = 0.01 doubled until ||C_f C_f^-1 - I||_F < 0.05;
 *   SVD W C_f = U S V^T; `ipm` keeps the r largest triplets, `kpm` the r smallest;
 *   A0 = sqrt(S/s) (C_f^-1 V)^T, B0 = U sqrt(S/s), base W - s B0 A0 (so W C_f's other
 *   triplets, times C_f^-1, stay frozen).
 * - `lora_ga` (Wang et al. 2024): SVD of the mean gradient G = dL/dW = U S V^T (top 2r triplets);
 *   PEFT's default direction ArB2r takes A0 = V^T[:r], B0 = U[:, r:2r] diag(S[r:2r]); scale
 *   `stable` multiplies B0 by out^(1/4) / sqrt(gamma); base W - s B0 A0. PEFT calls
 *   `torch.svd_lowrank(G, q=4r, niter=4)` (and for `weight_svd` on W): here the exact triplets that
 *   sketch approximates. The paper's reference code scales both factors by out^(1/4)/sqrt(gamma) and
 *   does not multiply B0 by S; PEFT's form is followed.
 *
 * Trainable parameters: r_l (in + out) per adapted layer (EVA's r_l from the redistribution).
 * @module
 */
import { EigenvalueDecomposition, inverse, Matrix } from "ml-matrix";
import type { Rng } from "../models/util/rng.ts";
import type { LayerActivations } from "./types.ts";
import { exactSvd, type LoraStart, type Mat, residualOf } from "./lora_init.ts";

/** The LoRA inits that need the run's data. */
export type LoraDataInit = "eva" | "corda" | "lora_ga";

/** PEFT's `init_lora_weights` values of {@link LoraDataInit}. */
export const LORA_DATA_INITS: readonly LoraDataInit[] = ["eva", "corda", "lora_ga"];

function mat(rows: number, cols: number): Mat {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

function toMl(a: Mat): Matrix {
  const m = new Matrix(a.rows, a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) m.set(i, j, a.data[i * a.cols + j]);
  return m;
}

function fromMl(m: Matrix): Mat {
  const out = mat(m.rows, m.columns);
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < m.columns; j++) out.data[i * m.columns + j] = m.get(i, j);
  }
  return out;
}

/** Python's round (half to even), as PEFT's `round(layer_rank * rho)`. */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Principal components of a layer's inputs (PEFT `IncrementalPCA` attributes, exact). */
export interface EvaPca {
  /** components_ [k, in]: the top-k right-singular vectors of the centered inputs, as rows. */
  components: Mat;
  /** singular_values_ [k]. */
  singularValues: Float64Array;
  /** explained_variance_ratio_ [k]: S_i^2 / ||X - mean||_F^2. */
  explainedVarianceRatio: Float64Array;
}

/**
 * The top `k` principal components of X [rows, cols] (row-major): the right-singular vectors of X
 * minus its column means, computed exactly as the top eigenvectors of X_c^T X_c (S^2 its
 * eigenvalues), each component's sign set so its largest |entry| (first one on ties) is positive
 * (sklearn/PEFT `svd_flip(u_based_decision=False)`).
 */
export function evaPca(x: ArrayLike<number>, rows: number, cols: number, k: number, layer = "layer"): EvaPca {
  if (k > cols) {
    throw new Error(
      `--opt init=eva: ${layer} has ${cols} inputs, fewer than round(rho r) = ${k}; lower --rank or evaRho`,
    );
  }
  if (rows < k) {
    throw new Error(
      `--opt init=eva: ${layer} saw ${rows} input rows, fewer than round(rho r) = ${k}; lower --rank`,
    );
  }
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += x[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  // X_c^T X_c (upper triangle, then mirrored): its eigenvectors are X_c's right-singular vectors and
  // its eigenvalues their S^2 (an [in, in] eigenproblem, several times cheaper than X_c's SVD when
  // rows exceed in).
  const gram = new Matrix(cols, cols);
  const g = new Float64Array(cols * cols);
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) row[j] = x[i * cols + j] - mean[j];
    for (let p = 0; p < cols; p++) {
      const xp = row[p];
      if (xp === 0) continue;
      for (let q = p; q < cols; q++) g[p * cols + q] += xp * row[q];
    }
  }
  let total = 0;
  for (let p = 0; p < cols; p++) {
    total += g[p * cols + p];
    for (let q = p; q < cols; q++) {
      gram.set(p, q, g[p * cols + q]);
      gram.set(q, p, g[p * cols + q]);
    }
  }
  if (!(total > 0)) throw new Error(`--opt init=eva: ${layer}'s inputs do not vary; give the run more items`);
  const eig = new EigenvalueDecomposition(gram, { assumeSymmetric: true });
  const order = eig.realEigenvalues.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  const vectors = eig.eigenvectorMatrix;
  const components = mat(k, cols);
  const singularValues = new Float64Array(k);
  const explainedVarianceRatio = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const col = order[c];
    let best = 0;
    for (let j = 1; j < cols; j++) {
      if (Math.abs(vectors.get(j, col)) > Math.abs(vectors.get(best, col))) best = j;
    }
    const sign = vectors.get(best, col) < 0 ? -1 : 1;
    for (let j = 0; j < cols; j++) components.data[c * cols + j] = sign * vectors.get(j, col);
    const lambda = Math.max(0, eig.realEigenvalues[col]);
    singularValues[c] = Math.sqrt(lambda);
    explainedVarianceRatio[c] = lambda / total;
  }
  return { components, singularValues, explainedVarianceRatio };
}

/**
 * EVA's rank redistribution (PEFT `_get_rank_distribution`): all layers' explained-variance ratios
 * (each layer's first `maxComponents`) sorted descending, the `budget` largest counted per layer.
 * Ties go to the earlier layer, then the earlier component, so layers with equal inputs (PEFT
 * hashes them) rank the first one highest, as PEFT's swap does. Layers winning none get 0.
 */
export function evaRankDistribution(
  ratios: ReadonlyMap<string, ArrayLike<number>>,
  budget: number,
  maxComponents: number,
): Map<string, number> {
  const entries: { layer: number; comp: number; value: number }[] = [];
  const names = [...ratios.keys()];
  names.forEach((name, layer) => {
    const r = ratios.get(name)!;
    for (let comp = 0; comp < Math.min(maxComponents, r.length); comp++) {
      entries.push({ layer, comp, value: r[comp] });
    }
  });
  entries.sort((a, b) => b.value - a.value || a.layer - b.layer || a.comp - b.comp);
  const counts = new Map(names.map((n) => [n, 0]));
  for (const e of entries.slice(0, budget)) counts.set(names[e.layer], counts.get(names[e.layer])! + 1);
  return counts;
}

/** EVA's options (PEFT `EvaConfig`, defaults as PEFT). */
export interface EvaOptions {
  /** rho >= 1: a layer's rank is at most round(rho r) (default 2). */
  rho: number;
  /** Divide A0's rows by sqrt of their singular values (default false). */
  whiten: boolean;
  /** alpha_l = alpha r_l / r, keeping alpha / r (default true). */
  adjustScalingFactors: boolean;
}

/** One layer's EVA start: its rank (0: not adapted), A0 [rank, in] and its LoRA alpha. */
export interface EvaLayerStart {
  rank: number;
  a: Float32Array;
  alpha: number;
}

/**
 * EVA for every target at once (the redistribution couples layers): PCA of each layer's inputs
 * (layers sharing one input array computed once), ranks by {@link evaRankDistribution} with budget
 * r per layer and cap round(rho r), A0 the first r_l components (whitened if asked), B0 = 0.
 */
export function evaStarts(
  layers: ReadonlyMap<string, { inputs: Float32Array; rows: number; cols: number }>,
  rank: number,
  alpha: number,
  o: EvaOptions,
): Map<string, EvaLayerStart> {
  if (!(o.rho >= 1)) throw new Error(`--opt evaRho=${o.rho}: rho must be >= 1 (PEFT EvaConfig)`);
  const maxComponents = pythonRound(rank * o.rho);
  const pcas = new Map<string, EvaPca>();
  const byInput = new Map<Float32Array, EvaPca>();
  for (const [name, l] of layers) {
    let p = byInput.get(l.inputs);
    if (!p) {
      p = evaPca(l.inputs, l.rows, l.cols, maxComponents, name);
      byInput.set(l.inputs, p);
    }
    pcas.set(name, p);
  }
  const ranks = evaRankDistribution(
    new Map([...pcas].map(([n, p]) => [n, p.explainedVarianceRatio])),
    rank * layers.size,
    maxComponents,
  );
  const out = new Map<string, EvaLayerStart>();
  for (const [name, p] of pcas) {
    const r = ranks.get(name)!;
    const cols = p.components.cols;
    const a = new Float32Array(r * cols);
    for (let c = 0; c < r; c++) {
      const div = o.whiten ? Math.sqrt(p.singularValues[c]) : 1;
      for (let j = 0; j < cols; j++) a[c * cols + j] = p.components.data[c * cols + j] / div;
    }
    out.set(name, { rank: r, a, alpha: r !== rank && o.adjustScalingFactors ? (alpha * r) / rank : alpha });
  }
  return out;
}

/**
 * CorDA's covariance (PEFT `calib_cov_distribution`'s hook): the mean over sequences of
 * X_i^T X_i with each sequence's rows X_i divided by |max(X_i)| (its largest entry, not the
 * largest magnitude, as PEFT's `input / torch.max(input).abs()`).
 */
export function cordaCovariance(act: LayerActivations, cols: number, layer = "layer"): Mat {
  const c = mat(cols, cols);
  const starts = act.sequenceStarts;
  let count = 0;
  for (let s = 0; s + 1 < starts.length; s++) {
    const [from, to] = [starts[s], starts[s + 1]];
    if (to <= from) continue;
    let max = -Infinity;
    for (let i = from * cols; i < to * cols; i++) max = Math.max(max, act.inputs[i]);
    const norm = Math.abs(max);
    if (!(norm > 0) || !Number.isFinite(norm)) {
      throw new Error(
        `--opt init=corda: a calibration sequence of ${layer} has largest input ${max}; check the data`,
      );
    }
    const row = new Float64Array(cols);
    for (let i = from; i < to; i++) {
      for (let p = 0; p < cols; p++) row[p] = act.inputs[i * cols + p] / norm;
      for (let p = 0; p < cols; p++) {
        const xp = row[p];
        if (xp === 0) continue;
        for (let q = p; q < cols; q++) c.data[p * cols + q] += xp * row[q];
      }
    }
    count++;
  }
  if (count === 0) throw new Error(`--opt init=corda: ${layer} saw no calibration rows`);
  for (let p = 0; p < cols; p++) {
    for (let q = p; q < cols; q++) {
      c.data[p * cols + q] /= count;
      c.data[q * cols + p] = c.data[p * cols + q];
    }
  }
  return c;
}

/**
 * The damped covariance PEFT inverts (`collect_eigens_for_layer`): C + d mean(diag C) I, d from
 * 0.01 doubling until ||C_f C_f^-1 - I||_F < 0.05. Returns C_f, its inverse and d.
 */
export function cordaDamped(cov: Mat, layer = "layer"): { damped: Mat; inv: Mat; damp: number } {
  const n = cov.rows;
  let meanDiag = 0;
  for (let i = 0; i < n; i++) meanDiag += cov.data[i * n + i];
  meanDiag /= n;
  if (!(meanDiag > 0) || !Number.isFinite(meanDiag)) {
    throw new Error(
      `--opt init=corda: ${layer}'s input covariance has mean diagonal ${meanDiag}; check the data`,
    );
  }
  for (let damp = 0.01, tries = 0; tries < 64; damp *= 2, tries++) {
    const damped = mat(n, n);
    damped.data.set(cov.data);
    for (let i = 0; i < n; i++) damped.data[i * n + i] += meanDiag * damp;
    const inv = fromMl(inverse(toMl(damped)));
    const prod = toMl(damped).mmul(toMl(inv));
    let err = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) err += (prod.get(i, j) - +(i === j)) ** 2;
    if (Math.sqrt(err) < 0.05) return { damped, inv, damp };
  }
  throw new Error(`--opt init=corda: ${layer}'s input covariance could not be inverted; check the data`);
}

/** CorDA's mode: instruction-previewed (largest triplets) or knowledge-preserved (smallest). */
export type CordaMethod = "ipm" | "kpm";

/**
 * CorDA's start for weight W [out, in] from its input covariance `cov` [in, in] (see the module
 * doc): A0 = sqrt(S_I/s) (C_f^-1 V_I)^T, B0 = U_I sqrt(S_I/s), residual W - s B0 A0.
 */
export function cordaStart(
  weight: Float32Array,
  out: number,
  inF: number,
  cov: Mat,
  rank: number,
  scale: number,
  method: CordaMethod,
  layer = "layer",
): LoraStart {
  const k = Math.min(out, inF);
  if (rank > k) throw new Error(`--opt init=corda: --rank ${rank} exceeds min(out, in) = ${k} of ${layer}`);
  if (cov.rows !== inF || cov.cols !== inF) {
    throw new Error(`--opt init=corda: covariance of ${layer} is not [${inF}, ${inF}]`);
  }
  const w: Mat = { rows: out, cols: inF, data: Float64Array.from(weight) };
  const { damped, inv } = cordaDamped(cov, layer);
  const svd = exactSvd(fromMl(toMl(w).mmul(toMl(damped))));
  const vInv = fromMl(toMl(inv).mmul(toMl(svd.v))); // [in, k]: C_f^-1 V (C_f symmetric)
  const idx = Array.from({ length: rank }, (_, i) => (method === "ipm" ? i : k - rank + i));
  const a = new Float32Array(rank * inF);
  const b = new Float32Array(out * rank);
  idx.forEach((t, c) => {
    const root = Math.sqrt(Math.max(0, svd.s[t]) / scale);
    for (let i = 0; i < out; i++) b[i * rank + c] = svd.u.data[i * svd.u.cols + t] * root;
    for (let j = 0; j < inF; j++) a[c * inF + j] = vInv.data[j * vInv.cols + t] * root;
  });
  return { a, b, residual: residualOf(w, a, b, rank, scale) };
}

/** LoRA-GA's options (PEFT `LoraGAConfig`, defaults as PEFT). */
export interface LoraGaOptions {
  /** Which gradient triplets go to A and B (default ArB2r). */
  direction: "ArB2r" | "A2rBr" | "ArBr" | "random";
  /** Scaling of the factors (default stable). */
  scale: "stable" | "weight_svd" | "gd_scale" | "unit";
  /** gamma of the stable scale (default 16). */
  stableGamma: number;
}

/**
 * LoRA-GA's start for weight W [out, in] from its gradient estimate G [out, in] (PEFT
 * `lora_ga_init`, exact SVD in place of svd_lowrank): A0 = V^T rows, B0 = U columns times their
 * singular values, chosen by `direction` among the top 2r triplets, scaled by `scale`; residual
 * W - s B0 A0. `rng` draws the `random` direction's permutation (PEFT: torch.randperm).
 */
export function loraGaStart(
  weight: Float32Array,
  grad: Float32Array,
  out: number,
  inF: number,
  rank: number,
  scale: number,
  o: LoraGaOptions,
  rng: Rng,
  layer = "layer",
): LoraStart {
  const k = Math.min(out, inF);
  if (2 * rank > k) {
    throw new Error(
      `--opt init=lora_ga: 2 x --rank ${rank} exceeds min(out, in) = ${k} of ${layer}; lower --rank`,
    );
  }
  const g = exactSvd({ rows: out, cols: inF, data: Float64Array.from(grad) });
  const range = (from: number, step = 1) => Array.from({ length: rank }, (_, i) => from + step * i);
  let ia: number[];
  let ib: number[];
  if (o.direction === "ArB2r") [ia, ib] = [range(0), range(rank)];
  else if (o.direction === "A2rBr") [ia, ib] = [range(rank), range(0)];
  else if (o.direction === "ArBr") [ia, ib] = [range(1, 2), range(0, 2)];
  else {
    ia = rng.shuffle(Array.from({ length: 2 * rank }, (_, i) => i)).slice(0, rank);
    ib = ia; // PEFT: A and B take the same random indices
  }
  let fa = 1;
  let fb = 1;
  if (o.scale === "stable") fb = out ** 0.25 / Math.sqrt(o.stableGamma);
  else if (o.scale === "weight_svd") {
    const top = exactSvd({ rows: out, cols: inF, data: Float64Array.from(weight) }).s[0];
    if (g.s[ib[0]] > 0) fb = top / g.s[ib[0]];
  } else if (o.scale === "gd_scale") [fa, fb] = [1 / scale, 1 / scale];
  const a = new Float32Array(rank * inF);
  const b = new Float32Array(out * rank);
  for (let c = 0; c < rank; c++) {
    for (let j = 0; j < inF; j++) a[c * inF + j] = g.v.data[j * g.v.cols + ia[c]] * fa;
    const sb = g.s[ib[c]] * fb;
    for (let i = 0; i < out; i++) b[i * rank + c] = g.u.data[i * g.u.cols + ib[c]] * sb;
  }
  const w: Mat = { rows: out, cols: inF, data: Float64Array.from(weight) };
  return { a, b, residual: residualOf(w, a, b, rank, scale) };
}
