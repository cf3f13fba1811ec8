/**
 * LoRA's weight-derived inits (lora_init.ts, `--opt init=` of lora and rslora): QR against NumPy's
 * published result, OLoRA's orthonormal B0 and triangular A0, MiLoRA's minor directions checked
 * against eigenvalues of W W^T from an independent Jacobi solver, the fast SVD against a planted
 * low-rank matrix, identity at init, the PEFT rank-2r conversion and option validation.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { lora, type LoraLinear, rslora } from "./lora.ts";
import { pissa } from "./pissa.ts";
import { householderQr, loraInitStart, type Mat, randomizedSvd } from "./lora_init.ts";
import { parseMethodConfig } from "./registry.ts";
import { plainContext } from "./common.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel, trainSteps } from "./tiny_test_utils.ts";
import { maxDiff, mul, type Rows, rowsOf, tr } from "./rows_test_utils.ts";

await initBackend("cpu");

/** Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (a reference independent of the SVD). */
function jacobiEigenvalues(sym: Rows): number[] {
  const a = sym.map((r) => [...r]);
  const n = a.length;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (off < 1e-26) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const [akp, akq] = [a[k][p], a[k][q]];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const [apk, aqk] = [a[p][k], a[q][k]];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  return a.map((r, i) => r[i]).sort((x, y) => y - x);
}

const weightOf = (name: string, seed = 1): { w: Float32Array; out: number; inF: number } => {
  const model = tinyModel(seed);
  const p = model.param(`${name}.weight`) as tf.Tensor2D;
  return { w: p.dataSync() as Float32Array, out: p.shape[0], inF: p.shape[1] };
};

Deno.test("householderQr: torch/NumPy's signs on [[1,2],[3,4]], and Q R = A with orthonormal Q on wide and tall", () => {
  // numpy.linalg.qr([[1, 2], [3, 4]]) (LAPACK dgeqrf, as torch.linalg.qr).
  const { q, r } = householderQr({ rows: 2, cols: 2, data: Float64Array.from([1, 2, 3, 4]) });
  const want = {
    q: [-0.31622777, -0.9486833, -0.9486833, 0.31622777],
    r: [-3.16227766, -4.42718872, 0, -0.63245553],
  };
  assert.ok(maxAbsDiff(q.data, want.q) < 1e-7 && maxAbsDiff(r.data, want.r) < 1e-7, `${q.data} ${r.data}`);
  const rng = new Rng(3);
  for (const [m, n] of [[7, 4], [4, 9]]) {
    const a: Mat = { rows: m, cols: n, data: Float64Array.from(rng.normalArray(m * n)) };
    const f = householderQr(a);
    const k = Math.min(m, n);
    const [qq, rr] = [rowsOf(f.q.data, m, k), rowsOf(f.r.data, k, n)];
    assert.ok(maxDiff(mul(qq, rr), rowsOf(a.data, m, n)) < 1e-12);
    assert.ok(
      maxDiff(
        mul(tr(qq), qq),
        rowsOf(Float64Array.from({ length: k * k }, (_, i) => +(i % (k + 1) === 0)), k, k),
      ) < 1e-12,
    );
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) assert.equal(rr[i][j], 0);
  }
});

Deno.test("olora: B0 = Q_r orthonormal, A0 = R_r upper triangular, B0 A0 reproduces W's first r columns", () => {
  for (const name of ["layers.0.attn.q", "layers.1.attn.k"]) { // [16x16] and wide [8x16]
    const { w, out, inF } = weightOf(name);
    const r = 4;
    const s = 2;
    const f = loraInitStart("olora", w, out, inF, r, s, new Rng(0));
    const [a, b, wr] = [rowsOf(f.a, r, inF), rowsOf(f.b, out, r), rowsOf(w, out, inF)];
    const eye = Array.from({ length: r }, (_, i) => Array.from({ length: r }, (_, j) => +(i === j)));
    assert.ok(maxDiff(mul(tr(b), b), eye) < 1e-6, `${name}: B0^T B0 = I`);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < i; j++) assert.equal(a[i][j], 0, `${name}: A0 triangular`);
    }
    // Gram-Schmidt's property of QR: W's first r columns lie in span(Q_r), W[:, :r] = Q_r R_r[:, :r].
    const ba = mul(b, a);
    assert.ok(maxDiff(ba.map((row) => row.slice(0, r)), wr.map((row) => row.slice(0, r))) < 1e-5, name);
    // The residual is W - s B0 A0 (PEFT subtracts the scaled product without rescaling R).
    const res = rowsOf(f.residual, out, inF);
    assert.ok(maxDiff(res, wr.map((row, i) => row.map((x, j) => x - s * ba[i][j]))) < 1e-5, name);
  }
});

Deno.test("milora takes the r smallest singular directions, pissa the r largest (vs Jacobi eigenvalues of W W^T)", () => {
  const { w, out, inF } = weightOf("layers.0.mlp.up"); // [24x16]
  const r = 3;
  const s = 0.5;
  const eig = jacobiEigenvalues(mul(rowsOf(w, out, inF), tr(rowsOf(w, out, inF)))).slice(
    0,
    Math.min(out, inF),
  );
  for (const [init, want] of [["milora", eig.slice(-r)], ["pissa", eig.slice(0, r)]] as const) {
    const f = loraInitStart(init, w, out, inF, r, s, new Rng(0));
    const [a, b] = [rowsOf(f.a, r, inF), rowsOf(f.b, out, r)];
    // B0^T B0 = A0 A0^T = diag(S_I / s): orthogonal columns / rows scaled by the chosen singular values.
    const btb = mul(tr(b), b);
    const aat = mul(a, tr(a));
    const got = btb.map((row, i) => row[i] * s).sort((x, y) => y - x);
    want.forEach((lambda, i) =>
      assert.ok(Math.abs(got[i] - Math.sqrt(lambda)) < 1e-5, `${init}: ${got} vs ${want}`)
    );
    assert.ok(maxDiff(btb, aat) < 1e-5, init);
    // s B0 A0's squared Frobenius norm is the sum of the chosen squared singular values (eigenvalues).
    const ba = mul(b, a);
    const fro2 = ba.flat().reduce((t, x) => t + (s * x) ** 2, 0);
    const sum = want.reduce((t, x) => t + x, 0);
    assert.ok(Math.abs(fro2 - sum) < 1e-4 * Math.max(1, sum), `${init}: ${fro2} vs ${sum}`);
  }
});

Deno.test("fast SVD (svd_lowrank, q = r): exact on a rank-r matrix, close to the top triplets otherwise, seeded", () => {
  const rng = new Rng(11);
  const [m, n, r] = [20, 12, 3];
  const left = rowsOf(rng.normalArray(m * r), m, r);
  const right = rowsOf(rng.normalArray(r * n), r, n);
  const low = mul(left, right);
  const a: Mat = { rows: m, cols: n, data: Float64Array.from(low.flat()) };
  for (const niter of [0, 2]) {
    const svd = randomizedSvd(a, r, niter, new Rng(5));
    const us = rowsOf(svd.u.data, m, r).map((row) => row.map((x, k) => x * svd.s[k]));
    assert.ok(maxDiff(mul(us, tr(rowsOf(svd.v.data, n, r))), low) < 1e-9, `niter ${niter}`);
    const eig = jacobiEigenvalues(mul(tr(low), low));
    for (let k = 0; k < r; k++) assert.ok(Math.abs(svd.s[k] - Math.sqrt(eig[k])) < 1e-9);
  }
  // A full-rank weight: pissa_niter_4's factors approach the exact ones (up to sign) and its
  // residual keeps the identity; the same seed gives the same sketch.
  const { w, out, inF } = weightOf("layers.0.mlp.down"); // [16x24]
  // A random weight's close 2nd and 3rd singular values make the subspace iteration slow, so the
  // error falls with K (about 0.17, 0.03, 1e-4 for K = 0, 4, 64 here).
  const exact = loraInitStart("pissa", w, out, inF, 2, 1, new Rng(0));
  const exactProduct = mul(rowsOf(exact.b, out, 2), rowsOf(exact.a, 2, inF));
  const err = (k: number) => {
    const f = loraInitStart(`pissa_niter_${k}`, w, out, inF, 2, 1, new Rng(9));
    return maxDiff(mul(rowsOf(f.b, out, 2), rowsOf(f.a, 2, inF)), exactProduct);
  };
  const [e0, e4, e64] = [err(0), err(4), err(64)];
  assert.ok(e0 > e4 && e4 > e64 && e64 < 1e-3, `${e0} ${e4} ${e64}`);
  const f1 = loraInitStart("pissa_niter_4", w, out, inF, 2, 1, new Rng(9));
  assert.deepEqual(f1.a, loraInitStart("pissa_niter_4", w, out, inF, 2, 1, new Rng(9)).a, "seeded");
  assert.notDeepEqual(f1.a, loraInitStart("pissa_niter_4", w, out, inF, 2, 1, new Rng(10)).a);
});

for (const init of ["olora", "pissa", "pissa_niter_4", "milora"]) {
  Deno.test(`lora --opt init=${init}: identity at init, trains only A and B, state round trip, merges`, () => {
    checkContract(lora, { rank: 4, alpha: 8, targets: "q+k+v+o", init });
  });
}

Deno.test("lora init: the PEFT export is the rank-2r conversion reproducing s (B A - B0 A0) (lora and rslora)", () => {
  for (const [method, alphaFactor] of [[lora, 2], [rslora, Math.SQRT2]] as const) {
    const { model, applied } = applyTiny(method, { rank: 4, alpha: 8, targets: "q+v", init: "olora" });
    const c = TINY_CONFIG;
    const kv = c.nKvHeads * c.headDim;
    assert.equal(trainableCount(applied), c.nLayers * 4 * (2 * c.dim + (c.dim + kv)));
    trainSteps(model, applied, 3);
    const e = applied.peftExport!();
    assert.equal(e.config.r, 8);
    assert.ok(Math.abs((e.config.lora_alpha as number) - 8 * alphaFactor) < 1e-12);
    const s = (e.config.lora_alpha as number) / (method === rslora ? Math.sqrt(8) : 8);
    const layer = model.linear("layers.1.attn.v") as LoraLinear;
    const key = "base_model.model.model.layers.1.self_attn.v_proj";
    const [a, b] = [e.tensors.get(`${key}.lora_A.weight`)!, e.tensors.get(`${key}.lora_B.weight`)!];
    const dW = mul(rowsOf(b.data, 8, 8), rowsOf(a.data, 8, 16)).map((row) => row.map((x) => x * s));
    // On the original base: W + dW must equal the run's residual base + s B A.
    const w = rowsOf(model.param("layers.1.attn.v.weight").dataSync(), 8, 16);
    const run = tf.tidy(() => tf.add(layer.base.denseWeight(), layer.delta()).dataSync());
    assert.ok(maxDiff(w.map((row, i) => row.map((x, j) => x + dW[i][j])), rowsOf(run, 8, 16)) < 1e-5);
    applied.dispose();
  }
});

Deno.test("lora init=pissa starts from the pissa method's factors; pissa --opt niter=K is the fast variant", () => {
  const opts = { rank: 4, alpha: 8, targets: "q+v" };
  const viaLora = applyTiny(lora, { ...opts, init: "pissa" });
  const viaPissa = applyTiny(pissa, opts);
  for (let i = 0; i < viaLora.applied.trainable.length; i++) {
    const d = maxAbsDiff(viaLora.applied.trainable[i].dataSync(), viaPissa.applied.trainable[i].dataSync());
    assert.ok(d < 1e-6, `factor ${i} differs by ${d}`);
  }
  const ids = tinyBatch();
  assert.ok(maxAbsDiff(logitsOf(viaLora.model, ids), logitsOf(viaPissa.model, ids)) < 1e-5);
  viaLora.applied.dispose();
  viaPissa.applied.dispose();
  checkContract(pissa, { ...opts, niter: 4 });
});

Deno.test("lora init: options absent by default, bad values and --loftq together are one-line errors", () => {
  assert.equal("init" in parseMethodConfig(lora, {}), false);
  assert.throws(
    () => parseMethodConfig(lora, { init: "gauss" }),
    /option 'init': expected olora, pissa, pissa_niter_K, milora, eva, corda or lora_ga/,
  );
  assert.throws(() => parseMethodConfig(lora, { init: "pissa_niter_" }), /option 'init'/);
  const cfg = parseMethodConfig(lora, { rank: 4, targets: "q", init: "olora" });
  const ctx = {
    ...plainContext(new Rng(0)),
    initialFactors: new Map([["layers.0.attn.q", { a: new Float32Array(64), b: new Float32Array(64) }]]),
  };
  assert.throws(() => lora.apply(tinyModel(), cfg, ctx), /--loftq and --opt init=olora both set/);
  assert.throws(() => applyTiny(lora, { rank: 9, targets: "k", init: "milora" }), /--rank 9 is impossible/);
});
