/**
 * LoRA's data-driven inits (lora_data_init.ts, `--opt init=eva|corda|lora_ga`) and the harness's
 * data for them (bench/init_data.ts): EVA's components against an eigen-decomposition of the
 * centered covariance (ml-matrix EigenvalueDecomposition) and a closed-form line, its rank
 * redistribution on a hand-counted example; CorDA's covariance on hand numbers, W reproduced at
 * init and its adapter the best rank-r part of W C; LoRA-GA's first step through a real LoRA layer
 * against the gradient's top-r projection from an eigen-decomposition of G^T G; the gradient
 * estimate against tfjs gradients of the weight itself; and the whole method on the tiny model.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { EigenvalueDecomposition, Matrix, SingularValueDecomposition } from "ml-matrix";
import { initBackend } from "../models/backend.ts";
import { Linear } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { variableOf } from "../models/variables.ts";
import { estimateWeightGradients, initDataProviders, recordLayerActivations } from "../bench/init_data.ts";
import { lora, LoraLinear, rslora } from "./lora.ts";
import {
  cordaCovariance,
  cordaDamped,
  cordaStart,
  evaPca,
  evaRankDistribution,
  evaStarts,
  loraGaStart,
  pythonRound,
} from "./lora_data_init.ts";
import type { Mat } from "./lora_init.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { selectTargets } from "./targets.ts";
import type { AppliedMethod, MethodContext } from "./types.ts";
import { logitsOf, maxAbsDiff, tinyBatch, tinyModel, trainSteps } from "./tiny_test_utils.ts";
import { fro2, maxDiff, mul, type Rows, rowsOf, scaleRows, sub, tr } from "./rows_test_utils.ts";

await initBackend("cpu");

/** Eigenpairs of a symmetric matrix, descending (ml-matrix's tridiagonal QL, not an SVD). */
function eigenDesc(sym: Rows): { values: number[]; vectors: Rows } {
  const e = new EigenvalueDecomposition(new Matrix(sym), { assumeSymmetric: true });
  const order = e.realEigenvalues.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]);
  const v = e.eigenvectorMatrix;
  return {
    values: order.map(([x]) => x),
    vectors: order.map(([, i]) => sym.map((_, row) => v.get(row, i))), // one eigenvector per entry
  };
}

const randomRows = (rng: Rng, rows: number, cols: number): Rows =>
  rowsOf(rng.normalArray(rows * cols), rows, cols);

Deno.test("EVA: components are the centered inputs' top right-singular vectors (SVD; sign: largest entry positive), ratios S^2 / total", () => {
  const rng = new Rng(4);
  const [n, d, k] = [40, 6, 3];
  // Anisotropic inputs with an offset, so centering matters.
  const x = randomRows(rng, n, d).map((r) => r.map((v, j) => v * (j + 1) + 3));
  const pca = evaPca(Float64Array.from(x.flat()), n, d, k);
  // Reference: ml-matrix's SVD of the centered rows (evaPca takes an eigenproblem of X_c^T X_c).
  const mean = x[0].map((_, j) => x.reduce((s, r) => s + r[j], 0) / n);
  const xc = x.map((r) => r.map((v, j) => v - mean[j]));
  const svd = new SingularValueDecomposition(new Matrix(xc));
  const total = fro2(xc);
  for (let c = 0; c < k; c++) {
    const want = Array.from({ length: d }, (_, j) => svd.rightSingularVectors.get(j, c));
    const big = want.reduce((b, v, j) => (Math.abs(v) > Math.abs(want[b]) ? j : b), 0);
    const signed = want.map((v) => v * Math.sign(want[big]));
    const got = Array.from(pca.components.data.slice(c * d, (c + 1) * d));
    assert.ok(maxAbsDiff(got, signed) < 1e-9, `component ${c}: ${got} vs ${signed}`);
    assert.ok(Math.abs(pca.singularValues[c] - svd.diagonal[c]) < 1e-9 * svd.diagonal[0]);
    assert.ok(Math.abs(pca.explainedVarianceRatio[c] - svd.diagonal[c] ** 2 / total) < 1e-12);
    assert.ok(
      big === Array.from(got).reduce((b, v, j) => (Math.abs(v) > Math.abs(got[b]) ? j : b), 0) &&
        got[big] > 0,
    );
  }
  // Closed form: points on the line t (1, 2) + (5, 5) have one component (1, 2)/sqrt 5, ratio 1.
  const line = [-2, -1, 0.5, 3].flatMap((t) => [5 + t, 5 + 2 * t]);
  const one = evaPca(line, 4, 2, 1);
  assert.ok(maxAbsDiff(one.components.data, [1 / Math.sqrt(5), 2 / Math.sqrt(5)]) < 1e-12);
  assert.ok(Math.abs(one.explainedVarianceRatio[0] - 1) < 1e-12);
  assert.throws(() => evaPca(line, 4, 2, 3), /fewer than round\(rho r\) = 3; lower --rank or evaRho/);
});

Deno.test("EVA: rank redistribution takes the r * layers largest ratios, at most round(rho r) per layer", () => {
  // Hand count, budget 6 of r = 2 over 3 layers, cap 4: 0.9 (c), 0.5 (a), 0.4 (b), 0.3 (a), 0.2 (b),
  // 0.15 (b) -> a 2, b 3, c 1; c's 0.05 and the cap's 5th value never count.
  const ratios = new Map([
    ["a", [0.5, 0.3, 0.1, 0.05, 0.9]],
    ["b", [0.4, 0.2, 0.15, 0.1]],
    ["c", [0.9, 0.05, 0.01, 0]],
  ]);
  assert.deepEqual([...evaRankDistribution(ratios, 6, 4)], [["a", 2], ["b", 3], ["c", 1]]);
  // A layer that wins nothing gets 0; equal inputs rank the first layer highest (PEFT's swap).
  assert.deepEqual(
    [...evaRankDistribution(new Map([["q", [0.6, 0.2]], ["k", [0.6, 0.2]], ["o", [0.1, 0.1]]]), 3, 2)],
    [["q", 2], ["k", 1], ["o", 0]],
  );
  // Python's round halves to even (PEFT: round(r * rho)).
  assert.deepEqual([2.5, 3.5, 4.5, 4.4, 4.6].map(pythonRound), [2, 4, 4, 4, 5]);
});

Deno.test("EVA starts: A0 = first r_l components (whitened: / sqrt S), alpha_l = alpha r_l / r, shared inputs once", () => {
  const rng = new Rng(8);
  const [n, d] = [30, 5];
  const wide = Float32Array.from(randomRows(rng, n, d).map((r) => r.map((v, j) => v * (5 - j))).flat());
  const flat = Float32Array.from(randomRows(rng, n, d).map((r) => r.map((v) => v * 0.1)).flat());
  const layers = new Map([
    ["q", { inputs: wide, rows: n, cols: d }],
    ["k", { inputs: wide, rows: n, cols: d }],
    ["o", { inputs: flat, rows: n, cols: d }],
  ]);
  for (const whiten of [false, true]) {
    const starts = evaStarts(layers, 2, 8, { rho: 2, whiten, adjustScalingFactors: true });
    const ranks = [...starts.values()].map((s) => s.rank);
    assert.equal(ranks.reduce((s, r) => s + r, 0), 6, "budget r * layers");
    const pca = evaPca(wide, n, d, 4);
    const q = starts.get("q")!;
    for (let c = 0; c < q.rank; c++) {
      const div = whiten ? Math.sqrt(pca.singularValues[c]) : 1;
      const want = Array.from(pca.components.data.slice(c * d, (c + 1) * d), (v) => v / div);
      assert.ok(maxAbsDiff(q.a.slice(c * d, (c + 1) * d), want) < 1e-6);
    }
    for (const s of starts.values()) assert.equal(s.alpha, (8 * s.rank) / 2);
  }
  const plain = evaStarts(layers, 2, 8, { rho: 2, whiten: false, adjustScalingFactors: false });
  assert.ok([...plain.values()].every((s) => s.alpha === 8));
  assert.throws(
    () => evaStarts(layers, 2, 8, { rho: 0.5, whiten: false, adjustScalingFactors: true }),
    /rho must be >= 1/,
  );
});

Deno.test("CorDA covariance: per-sequence rows divided by |max|, averaged over sequences (hand numbers)", () => {
  // Sequence 1 [[1, 2], [3, -4]] (max 3), sequence 2 [[-5, 1]] (max 1):
  // C = ((1+9)/9, (2-12)/9; ., (4+16)/9) / 2 + (25, -5; -5, 1) / 2.
  const c = cordaCovariance({
    inputs: Float32Array.from([1, 2, 3, -4, -5, 1]),
    rows: 3,
    sequenceStarts: [0, 2, 3],
  }, 2);
  const want = [(10 / 9 + 25) / 2, (-10 / 9 - 5) / 2, (-10 / 9 - 5) / 2, (20 / 9 + 1) / 2];
  assert.ok(maxAbsDiff(c.data, want) < 1e-6, `${c.data}`);
  assert.throws(
    () => cordaCovariance({ inputs: Float32Array.from([0, 0]), rows: 1, sequenceStarts: [0, 1] }, 2),
    /largest input 0; check the data/,
  );
  // A singular covariance: the damping grows until the inverse is accurate (PEFT's loop).
  const singular: Mat = { rows: 3, cols: 3, data: Float64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1]) };
  const { damped, inv, damp } = cordaDamped(singular);
  assert.equal(damp, 0.01);
  const prod = mul(rowsOf(damped.data, 3, 3), rowsOf(inv.data, 3, 3));
  assert.ok(maxDiff(prod, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]) < 1e-9);
});

Deno.test("CorDA start: residual + s B0 A0 = W; s B0 A0 C_f is W C_f's best rank r (ipm) / least (kpm) part", () => {
  const rng = new Rng(21);
  const [out, inF, r, s] = [7, 5, 2, 0.75];
  const w = randomRows(rng, out, inF);
  const x = randomRows(rng, 50, inF).map((row) => row.map((v, j) => v * (1 + j)));
  const act = { inputs: Float32Array.from(x.flat()), rows: 50, sequenceStarts: [0, 20, 50] };
  const cov = cordaCovariance(act, inF);
  // PEFT's damped covariance at d = 0.01 (the inverse is accurate at once for this C).
  const cr = rowsOf(cov.data, inF, inF);
  const meanDiag = cr.reduce((t, row, i) => t + row[i], 0) / inF;
  const cf = cr.map((row, i) => row.map((v, j) => v + (i === j ? 0.01 * meanDiag : 0)));
  const wc = mul(w, cf);
  const left = eigenDesc(mul(wc, tr(wc))); // U's columns, S^2
  const sq = eigenDesc(mul(tr(wc), wc)).values.slice(0, Math.min(out, inF));
  const wf = Float32Array.from(w.flat());
  for (const method of ["ipm", "kpm"] as const) {
    const f = cordaStart(wf, out, inF, cov, r, s, method);
    const [a, b] = [rowsOf(f.a, r, inF), rowsOf(f.b, out, r)];
    const sba = scaleRows(mul(b, a), s);
    assert.ok(
      maxDiff(sub(rowsOf(f.residual, out, inF), sub(w, sba)), w.map((row) => row.map(() => 0))) < 1e-5,
    );
    // B0's columns span the chosen left singular vectors of W C_f.
    const pick = method === "ipm" ? [0, 1] : [sq.length - 2, sq.length - 1];
    const u = pick.map((i) => left.vectors[i]);
    const proj = mul(tr(u), mul(u, b)); // P_U B0
    assert.ok(maxDiff(proj, b) < 1e-6, `${method}: B0 outside span`);
    // Eckart-Young: ||s B0 A0 C_f||^2 = the chosen S^2; ||(W - s B0 A0) C_f||^2 = the others'.
    const chosen = pick.reduce((t, i) => t + sq[i], 0);
    const all = sq.reduce((t, v) => t + v, 0);
    assert.ok(Math.abs(fro2(mul(sba, cf)) - chosen) < 1e-6 * all, method);
    assert.ok(Math.abs(fro2(mul(sub(w, sba), cf)) - (all - chosen)) < 1e-6 * all, method);
  }
  // ipm's adapter carries more of W C_f than kpm's.
  const ipm = cordaStart(wf, out, inF, cov, r, s, "ipm");
  const kpm = cordaStart(wf, out, inF, cov, r, s, "kpm");
  assert.ok(fro2(rowsOf(ipm.b, out, r)) > fro2(rowsOf(kpm.b, out, r)));
});

Deno.test("LoRA-GA: first step through a LoRA layer is -lr s^2 (G's top-r projection + B0 B0^T G), PEFT's factors", () => {
  const rng = new Rng(33);
  const [out, inF, r, alpha] = [8, 6, 2, 4];
  const s = alpha / r;
  const w = randomRows(rng, out, inF);
  const x = randomRows(rng, 10, inF);
  const t = randomRows(rng, 10, out);
  // L(W) = 0.5 ||x W^T - t||^2: G = (x W^T - t)^T x.
  const g = mul(tr(sub(mul(x, tr(w)), t)), x);
  const f = loraGaStart(Float32Array.from(w.flat()), Float32Array.from(g.flat()), out, inF, r, s, {
    direction: "ArB2r",
    scale: "stable",
    stableGamma: 16,
  }, new Rng(0));
  const [a0, b0] = [rowsOf(f.a, r, inF), rowsOf(f.b, out, r)];
  // Independent route: eigenpairs of G^T G (v_i, sigma_i^2) and u_i = G v_i / sigma_i.
  const eig = eigenDesc(mul(tr(g), g));
  const sigma = eig.values.map(Math.sqrt);
  const v = eig.vectors;
  const uOf = (i: number) => mul(g, v[i].map((e) => [e])).map(([e]) => e / sigma[i]);
  const c = out ** 0.25 / 4;
  // A0's rows are v_0..v_{r-1}; B0's columns c sigma_i u_i for i = r..2r-1 (PEFT: U diag(S), stable).
  for (let i = 0; i < r; i++) {
    const dot = a0[i].reduce((t2, e, j) => t2 + e * v[i][j], 0);
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-6, `A0 row ${i}`);
    const col = b0.map((row) => row[i]);
    const want = uOf(r + i).map((e) => e * c * sigma[r + i]);
    const sign = Math.sign(col.reduce((t2, e, j) => t2 + e * want[j], 0));
    assert.ok(maxAbsDiff(col, want.map((e) => e * sign)) < 1e-5 * sigma[0], `B0 column ${i}`);
  }
  // The function is unchanged at init: residual + s B0 A0 = W.
  assert.ok(
    maxDiff(
      sub(rowsOf(f.residual, out, inF), sub(w, scaleRows(mul(b0, a0), s))),
      w.map((row) => row.map(() => 0)),
    ) < 1e-5,
  );
  // The real layer's gradients: the first-order change of s B A after one SGD step of lr is
  // -lr s (gB A0 + B0 gA), which must equal -lr s^2 (G A0^T A0 + B0 B0^T G).
  const base = new Linear("l", variableOf(() => tf.tensor2d(f.residual, [out, inF]), false));
  const av = tf.variable(tf.tensor2d(f.a, [r, inF]));
  const bv = tf.variable(tf.tensor2d(f.b, [out, r]));
  const layer = new LoraLinear(base, av, bv, s);
  const xt = tf.tensor2d(x.flat(), [10, inF]);
  const tt = tf.tensor2d(t.flat(), [10, out]);
  const { grads } = tf.variableGrads(
    () => tf.mul(0.5, tf.sum(tf.square(tf.sub(layer.forward(xt), tt)))) as tf.Scalar,
    [av, bv],
  );
  const [ga, gb] = [rowsOf(grads[av.name].dataSync(), r, inF), rowsOf(grads[bv.name].dataSync(), out, r)];
  const step = scaleRows(mul(gb, a0).map((row, i) => row.map((e, j) => e + mul(b0, ga)[i][j])), s);
  const topR = mul(g, mul(tr(v.slice(0, r)), v.slice(0, r))); // G's projection on its top-r right directions
  let second = w.map((row) => row.map(() => 0));
  for (let i = r; i < 2 * r; i++) {
    const u = uOf(i);
    second = second.map((row, p) => row.map((e, q) => e + c * c * sigma[i] ** 3 * u[p] * v[i][q]));
  }
  const want = scaleRows(topR.map((row, i) => row.map((e, j) => e + second[i][j])), s * s);
  const scaleOfG = Math.max(...g.flat().map(Math.abs)) * s * s;
  assert.ok(maxDiff(step, want) < 1e-4 * Math.max(scaleOfG, 1), `first step: ${maxDiff(step, want)}`);
  // The step's part along G's top-r right directions is exactly s^2 times G's projection there.
  const vr = mul(tr(v.slice(0, r)), v.slice(0, r));
  assert.ok(maxDiff(mul(step, vr), scaleRows(topR, s * s)) < 1e-4 * Math.max(scaleOfG, 1));
  tf.dispose([av, bv, xt, tt, base.weight, ...Object.values(grads)]);
  // Other directions and scales follow PEFT's slices.
  const flat = (o: Parameters<typeof loraGaStart>[6]) =>
    loraGaStart(Float32Array.from(w.flat()), Float32Array.from(g.flat()), out, inF, r, s, o, new Rng(0));
  const unit = flat({ direction: "A2rBr", scale: "unit", stableGamma: 16 });
  const bCol0 = rowsOf(unit.b, out, r).map((row) => row[0]);
  assert.ok(Math.abs(Math.hypot(...bCol0) - sigma[0]) < 1e-6 * sigma[0], "A2rBr: B takes the top triplet");
  const gd = flat({ direction: "ArB2r", scale: "gd_scale", stableGamma: 16 });
  assert.ok(Math.abs(Math.hypot(...rowsOf(gd.a, r, inF)[0]) - 1 / s) < 1e-6, "gd_scale divides A by s");
  assert.throws(
    () =>
      loraGaStart(new Float32Array(12), new Float32Array(12), 3, 4, 2, 1, {
        direction: "ArB2r",
        scale: "unit",
        stableGamma: 16,
      }, new Rng(0)),
    /2 x --rank 2 exceeds min\(out, in\) = 3/,
  );
});

/** A task over fixed token sequences of the tiny model: the LM loss of the chosen items. */
function tinyTask(model: LlamaModel) {
  const rng = new Rng(77);
  const seqs = Array.from({ length: 12 }, () => Array.from({ length: 8 }, () => rng.int(32)));
  return {
    trainItems: seqs.length,
    trainSequences: (items: readonly number[]) => items.map((i) => seqs[i]),
    loss: (items: number[]) =>
      model.lmLoss(tf.tensor2d(items.map((i) => seqs[i]), [items.length, 8], "int32")).loss,
  };
}

Deno.test("harness data: recorded inputs are the layers' real inputs; the gradient estimate equals tfjs's dL/dW", () => {
  const model = tinyModel();
  const task = tinyTask(model);
  const names = ["layers.0.attn.q", "layers.0.attn.k", "layers.1.mlp.down"];
  const acts = recordLayerActivations(model, names, task.trainSequences([0, 1, 2]), 20);
  const q = acts.get("layers.0.attn.q")!;
  assert.equal(q.rows, 16, "whole sequences within 20 rows");
  assert.deepEqual(q.sequenceStarts, [0, 8, 16]);
  assert.equal(q.inputs, acts.get("layers.0.attn.k")!.inputs, "q and k read one tensor");
  // q's recorded rows times its weight give q's output: compare with the layer's own forward.
  const yRec = tf.tidy(() =>
    model.linear("layers.0.attn.q").forward(tf.tensor2d(q.inputs, [16, 16])).dataSync()
  );
  const w = rowsOf(model.param("layers.0.attn.q.weight").dataSync(), 16, 16);
  assert.ok(maxDiff(rowsOf(yRec, 16, 16), mul(rowsOf(q.inputs, 16, 16), tr(w))) < 1e-5);
  assert.equal(acts.get("layers.1.mlp.down")!.inputs.length, 16 * 24);
  assert.ok(model.linear("layers.0.attn.q") instanceof Linear, "layers restored");
  // Gradients: the probe's estimate against variableGrads of the weight variables made trainable.
  const batches = [[0, 3], [5, 7]];
  const est = estimateWeightGradients(model, names, (b) => task.loss(b), batches);
  const weights = names.map((n) => model.param(`${n}.weight`) as tf.Variable);
  weights.forEach((v) => (v.trainable = true));
  const sums = names.map(() => 0).map(() => [] as number[]);
  for (const b of batches) {
    const { value, grads } = tf.variableGrads(() => task.loss(b), weights);
    weights.forEach((v, i) => {
      const d = grads[v.name].dataSync();
      d.forEach((e, j) => (sums[i][j] = (sums[i][j] ?? 0) + e / batches.length));
    });
    tf.dispose([value, ...Object.values(grads)]);
  }
  weights.forEach((v) => (v.trainable = false));
  names.forEach((n, i) => assert.ok(maxAbsDiff(est.get(n)!, sums[i]) < 1e-6, n));
  assert.ok(model.linear("layers.0.attn.q") instanceof Linear, "layers restored");
});

/** Number of LoRA-wrapped layers of a model. */
const adaptedCount = (model: LlamaModel) =>
  [...model.linears.values()].filter((l) => l instanceof LoraLinear).length;

/** A plain context plus the harness's providers over the tiny task. */
function dataContext(model: LlamaModel, seed = 1): MethodContext {
  return { ...plainContext(new Rng(seed)), ...initDataProviders(model, tinyTask(model), 4, new Rng(5)) };
}

function applyData(
  options: Record<string, unknown>,
  method = lora,
  seed = 1,
): { model: LlamaModel; applied: AppliedMethod } {
  const model = tinyModel();
  return {
    model,
    applied: method.apply(model, parseMethodConfig(method, options), dataContext(model, seed)),
  };
}

for (const init of ["eva", "corda", "lora_ga"]) {
  Deno.test(`lora --opt init=${init}: identity at init, trains A and B only, state round trip, merges`, () => {
    const options = { rank: 2, alpha: 4, targets: "all-linear", init };
    const ids = tinyBatch();
    const before = logitsOf(tinyModel(), ids);
    const { model, applied } = applyData(options);
    const d0 = maxAbsDiff(before, logitsOf(model, ids));
    assert.ok(d0 < 1e-5, `init changed the function by ${d0}`);
    const snapshot = [...model.params].map(([n, v]) => [n, v.dataSync().slice()] as const);
    const losses = trainSteps(model, applied, 5);
    assert.ok(losses[4] < losses[0], `loss did not fall: ${losses}`);
    for (const [n, data] of snapshot) assert.deepEqual(model.param(n).dataSync(), data, `${n} changed`);
    const trained = logitsOf(model, ids);
    const other = applyData(options, lora, 99);
    other.applied.loadState(applied.state());
    assert.ok(maxAbsDiff(trained, logitsOf(other.model, ids)) < 1e-6, "state round trip");
    // The export (on the original base) reproduces the run: tensors' ranks as the config says.
    const e = applied.peftExport!();
    const pattern = (e.config.rank_pattern ?? {}) as Record<string, number>;
    for (const [key, t] of e.tensors) {
      if (!key.endsWith("lora_A.weight")) continue;
      const m = key.replace(/^base_model\.model\./, "").replace(/\.lora_A\.weight$/, "");
      assert.equal(t.shape[0], pattern[m] ?? e.config.r, key);
    }
    applied.merge!();
    assert.ok(maxAbsDiff(trained, logitsOf(model, ids)) < 1e-5, "merged forward");
    ids.dispose();
    applied.dispose();
    other.applied.dispose();
  });
}

Deno.test("lora init=eva: A's rows are the recorded inputs' components, ranks redistributed, scale kept", () => {
  const model = tinyModel();
  const ctx = dataContext(model);
  const targets = selectTargets(model, "q+k+v+o");
  const acts = ctx.layerActivations!(targets);
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 2, alpha: 4, targets: "q+k+v+o", init: "eva" }),
    ctx,
  );
  let total = 0;
  for (const name of targets) {
    const l = model.linear(name);
    const act = acts.get(name)!;
    const pca = evaPca(act.inputs, act.rows, l.inFeatures, 4);
    if (!(l instanceof LoraLinear)) continue; // rank 0: not adapted
    const r = l.a.shape[0];
    total += r;
    assert.ok(r <= 4, "at most round(rho r)");
    assert.ok(maxAbsDiff(l.a.dataSync(), pca.components.data.slice(0, r * l.inFeatures)) < 1e-6, name);
    assert.ok(l.b.dataSync().every((x) => x === 0), "B = 0");
    assert.equal(l.scale, 2, "alpha_l / r_l = alpha / r");
  }
  assert.equal(total, 2 * targets.length, "budget r * layers");
  applied.dispose();
  // rsLoRA without adjustment: scale alpha / sqrt(r_l).
  const rs = applyData(
    { rank: 2, alpha: 4, targets: "q+k+v+o", init: "eva", evaAdjustScaling: false },
    rslora,
  );
  for (const l of rs.model.linears.values()) {
    if (l instanceof LoraLinear) assert.ok(Math.abs(l.scale - 4 / Math.sqrt(l.a.shape[0])) < 1e-12);
  }
  rs.applied.dispose();
});

Deno.test("lora data inits: deterministic per seed, options only with their init, missing data is a one-line error", () => {
  const a = applyData({ rank: 2, targets: "q+v", init: "lora_ga" });
  const b = applyData({ rank: 2, targets: "q+v", init: "lora_ga" });
  a.applied.trainable.forEach((v, i) => assert.deepEqual(v.dataSync(), b.applied.trainable[i].dataSync()));
  a.applied.dispose();
  b.applied.dispose();
  assert.throws(
    () => applyData({ rank: 2, targets: "q", evaRho: 3 }),
    /--opt evaRho applies only with --opt init=eva/,
  );
  assert.throws(
    () => applyData({ rank: 2, targets: "q", init: "eva", cordaMethod: "kpm" }),
    /cordaMethod applies only with --opt init=corda/,
  );
  assert.throws(() => parseMethodConfig(lora, { init: "corda", cordaMethod: "xpm" }), /option 'cordaMethod'/);
  const bare = (init: string) =>
    lora.apply(
      tinyModel(),
      parseMethodConfig(lora, { rank: 2, targets: "q", init }),
      plainContext(new Rng(0)),
    );
  assert.throws(() => bare("eva"), /init=eva needs the run's recorded layer inputs/);
  assert.throws(() => bare("lora_ga"), /init=lora_ga needs the run's gradient estimate/);
});

Deno.test("lora data inits: the PEFT export, read with PEFT's formulas (rank_pattern, alpha_pattern), is the run's weight", () => {
  for (
    const [init, method] of [["eva", lora], ["eva", rslora], ["corda", lora], ["lora_ga", rslora]] as const
  ) {
    // EVA at rank 1 on o and down: these layers' spectra differ enough to move ranks (one to 0).
    const options = init === "eva"
      ? { rank: 1, alpha: 4, targets: "o,down", init }
      : { rank: 2, alpha: 4, targets: "v,o,up,down", init };
    const { model, applied } = applyData(options, method);
    trainSteps(model, applied, 3);
    const e = applied.peftExport!();
    const c = e.config;
    const ranks = (c.rank_pattern ?? {}) as Record<string, number>;
    const alphas = (c.alpha_pattern ?? {}) as Record<string, number>;
    if (init !== "eva") assert.ok(c.rank_pattern === undefined && c.r === 4, "rank-2r conversion");
    else {
      assert.ok(Object.keys(ranks).length > 0, "eva: some layer's rank moved (the pattern is exercised)");
      assert.ok(adaptedCount(model) < 4, "eva: a layer left at rank 0 is not adapted");
    }
    let adapted = 0;
    for (const [name, l] of model.linears) {
      if (!(l instanceof LoraLinear)) continue;
      adapted++;
      // PEFT's LoraLayer: r and alpha from the patterns (key: the module's name in the base model).
      const m = name.replace(/^layers\.(\d+)\.attn\.(\w)$/, "model.layers.$1.self_attn.$2_proj")
        .replace(/^layers\.(\d+)\.mlp\.(\w+)$/, "model.layers.$1.mlp.$2_proj");
      const r = ranks[m] ?? (c.r as number);
      const alpha = alphas[m] ?? (c.lora_alpha as number);
      const s = c.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
      const a = e.tensors.get(`base_model.model.${m}.lora_A.weight`)!;
      const b = e.tensors.get(`base_model.model.${m}.lora_B.weight`)!;
      assert.equal(a.shape[0], r, `${init} ${m}`);
      const [out, inF] = [l.outFeatures, l.inFeatures];
      const w = rowsOf(model.param(`${name}.weight`).dataSync(), out, inF); // the original W
      const viaPeft = w.map((row, i) =>
        row.map((x, j) => x + s * mul(rowsOf(b.data, out, r), rowsOf(a.data, r, inF))[i][j])
      );
      const run = tf.tidy(() => tf.add(l.base.denseWeight(), l.delta()).dataSync());
      assert.ok(maxDiff(viaPeft, rowsOf(run, out, inF)) < 1e-5, `${init} ${m}`);
    }
    assert.equal(e.tensors.size, 2 * adapted, `${init}: one A and B per adapted layer`);
    applied.dispose();
  }
});
