/**
 * WaveFT: dW against a literal float64 transcription of PEFT's `get_delta_weight` + `waverec2d`
 * (padded grid, quadrant split, stride-2 transposed convolution, crops) with the filters as PEFT's
 * `wavelet.py` lists them; the Haar closed form and Parseval; the filters' orthonormality; the
 * sparse no-IDWT path; proportional budgets; init, the contract and the refused PEFT export.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Linear } from "../models/linear.ts";
import { waveft, waveftBudgets, WaveftLinear, waveletFilters } from "./waveft.ts";
import { checkContract } from "./contract_test_utils.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** rec_lo as PEFT's src/peft/tuners/waveft/wavelet.py lists it (from PyWavelets). */
const PEFT_REC_LO: Record<string, number[]> = {
  db1: [0.7071067811865476, 0.7071067811865476],
  db2: [0.4829629131445341, 0.8365163037378079, 0.2241438680420134, -0.1294095225512604],
  sym2: [0.48296291314469025, 0.83651630373746899, 0.22414386804185735, -0.12940952255092145],
  db3: [
    0.3326705529500826,
    0.80689150931333875,
    0.45987750211933132,
    -0.13501102001039084,
    -0.085441273882241486,
    0.035226291882100656,
  ],
};
/** PEFT's WAVELET_REDUCTIONS for these families. */
const REDUCTION: Record<string, number> = { db1: 0, db2: 2, sym2: 2, db3: 4 };

/**
 * PEFT's WaveFTLayer.get_delta_weight (use_idwt=True) transcribed step by step in float64: pad to
 * even [out + red, in + red], centre offsets, place c, split cA | cH / cV | cD, conv_transpose2d
 * with stride 2 and filters outer(lo,lo), outer(hi,lo), outer(lo,hi), outer(hi,hi) (torch's
 * out[2i + a, 2j + b] += in[i, j] w[a, b]), crop (2L - 3) // 2 each side, centred crop to [out, in].
 */
function peftDelta(
  c: ArrayLike<number>,
  rows: ArrayLike<number>,
  cols: ArrayLike<number>,
  out: number,
  inF: number,
  family: string,
  scaling: number,
): number[][] {
  const lo = PEFT_REC_LO[family];
  const L = lo.length;
  const hi = lo.map((_, i) => (-1) ** i * lo[L - 1 - i]);
  let H = out + REDUCTION[family];
  let W = inF + REDUCTION[family];
  if (H % 2) H++;
  if (W % 2) W++;
  const grid = Array.from({ length: H }, () => new Array(W).fill(0));
  const [ro, co] = [Math.floor((H - out) / 2), Math.floor((W - inF) / 2)];
  for (let l = 0; l < c.length; l++) grid[rows[l] + ro][cols[l] + co] = c[l];
  const [H2, W2] = [H / 2, W / 2];
  const quad = (r0: number, c0: number) =>
    Array.from({ length: H2 }, (_, i) => Array.from({ length: W2 }, (_, j) => grid[r0 + i][c0 + j]));
  const channels = [quad(0, 0), quad(0, W2), quad(H2, 0), quad(H2, W2)]; // cA, cH, cV, cD
  const outer = (a: number[], b: number[]) => a.map((x) => b.map((y) => x * y));
  const filt = [outer(lo, lo), outer(hi, lo), outer(lo, hi), outer(hi, hi)];
  const [OH, OW] = [(H2 - 1) * 2 + L, (W2 - 1) * 2 + L];
  const full = Array.from({ length: OH }, () => new Array(OW).fill(0));
  for (let ch = 0; ch < 4; ch++) {
    for (let i = 0; i < H2; i++) {
      for (let j = 0; j < W2; j++) {
        for (let a = 0; a < L; a++) {
          for (let b = 0; b < L; b++) full[2 * i + a][2 * j + b] += channels[ch][i][j] * filt[ch][a][b];
        }
      }
    }
  }
  const pad = Math.floor((2 * L - 3) / 2);
  const cropped = full.slice(pad, OH - pad).map((r) => r.slice(pad, OW - pad));
  const [sr, sc] = [Math.floor((cropped.length - out) / 2), Math.floor((cropped[0].length - inF) / 2)];
  return cropped.slice(sr, sr + out).map((r) => r.slice(sc, sc + inF).map((v) => v * scaling));
}

/** Apply WaveFT, set random coefficients, and return the layers by name. */
function withRandomSpectrum(options: Record<string, unknown>, names: string[]) {
  const { model, applied } = applyTiny(waveft, options);
  const layers = names.map((n) => model.linear(n) as WaveftLinear);
  for (const layer of layers) {
    layer.spectrum.assign(tf.randomNormal([layer.spectrum.size], 0, 1, "float32", 11));
  }
  return { model, applied, layers };
}

Deno.test("waveft: dW equals PEFT's padded-grid IDWT (db1, db2, sym2, db3) and the forward adds x dW^T", () => {
  for (const family of ["db1", "db2", "sym2", "db3"]) {
    // k [8x16] (even), down [16x24]; n large enough to fill every quadrant.
    const { applied, layers } = withRandomSpectrum(
      { targets: "k,down", nFrequency: 60, scaling: 7, waveletFamily: family },
      ["layers.0.attn.k", "layers.1.mlp.down"],
    );
    for (const layer of layers) {
      const want = peftDelta(
        layer.spectrum.dataSync(),
        layer.locations.rows,
        layer.locations.cols,
        layer.outFeatures,
        layer.inFeatures,
        family,
        7,
      ).flat();
      const got = layer.delta().dataSync();
      assert.ok(maxAbsDiff(got, want) < 1e-4, `${family} ${layer.name}: ${maxAbsDiff(got, want)}`);
      const x = tf.randomNormal([3, layer.inFeatures], 0, 1, "float32", 4) as tf.Tensor2D;
      const ref = tf.add(layer.base.forward(x), tf.matMul(x, layer.delta(), false, true));
      assert.ok(maxAbsDiff(layer.forward(x).dataSync(), ref.dataSync()) < 1e-4, `${family} ${layer.name}`);
    }
    applied.dispose();
  }
});

Deno.test("waveft: odd layer sizes pad and crop as PEFT (db1 and db2 on a [5x7] layer)", () => {
  for (const family of ["db1", "db2"]) {
    const base = new Linear("odd", tf.variable(tf.zeros([5, 7]), false) as tf.Variable<tf.Rank.R2>);
    const rows = Int32Array.from([0, 4, 2, 3, 1, 4, 0]);
    const cols = Int32Array.from([0, 6, 3, 5, 2, 0, 6]);
    const c = [0.3, -1.2, 0.7, 2.0, -0.4, 1.1, 0.9];
    const spectrum = tf.variable(tf.tensor1d(c));
    const layer = new WaveftLinear(base, spectrum, { rows, cols }, 3, waveletFilters(family));
    const want = peftDelta(c, rows, cols, 5, 7, family, 3).flat();
    assert.ok(maxAbsDiff(layer.delta().dataSync(), want) < 1e-5, family);
    layer.disposeOwned();
    tf.dispose([spectrum, base.weight]);
  }
});

Deno.test("waveft: Haar closed form and Parseval on an even layer", () => {
  // Haar, no padding: dW[2i+a, 2j+b] = s/2 (cA + (-1)^a cH + (-1)^b cV + (-1)^(a+b) cD).
  const { applied, layers: [layer] } = withRandomSpectrum(
    { targets: "k", nFrequency: 128, scaling: 3 }, // k is [8x16]: every grid position
    ["layers.0.attn.k"],
  );
  const [out, inF] = [8, 16];
  const grid = Array.from({ length: out }, () => new Array(inF).fill(0));
  const c = layer.spectrum.dataSync();
  layer.locations.rows.forEach((r, l) => (grid[r][layer.locations.cols[l]] = c[l]));
  const d = layer.delta().arraySync();
  for (let p = 0; p < out; p++) {
    for (let q = 0; q < inF; q++) {
      const [i, a, j, b] = [p >> 1, p & 1, q >> 1, q & 1];
      const v = grid[i][j] + (-1) ** a * grid[i][j + 8] + (-1) ** b * grid[i + 4][j] +
        (-1) ** (a + b) * grid[i + 4][j + 8];
      assert.ok(Math.abs(d[p][q] - 1.5 * v) < 1e-5, `${p},${q}`);
    }
  }
  // The one-level Haar IDWT is orthonormal: ||dW||_F = scaling ||c||.
  const norm = (xs: ArrayLike<number>) => Math.sqrt(Array.from(xs).reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm(d.flat()) - 3 * norm(c)) < 1e-4 * norm(c));
  applied.dispose();
});

Deno.test("waveft: filters are PEFT's values and orthonormal with the stated vanishing moments", () => {
  for (const [family, want] of Object.entries(PEFT_REC_LO)) {
    const { lo, hi } = waveletFilters(family);
    // PEFT's sym2 and db3 rows come from PyWavelets' shorter symlet tables (off by up to 4e-12
    // from the closed form); far below float32's resolution.
    assert.ok(maxAbsDiff(lo, want) < 1e-11, family);
    const L = lo.length;
    const dot = (a: number[], b: number[], shift: number) =>
      a.reduce((s, x, i) => s + (i + shift < L && i + shift >= 0 ? x * b[i + shift] : 0), 0);
    assert.ok(Math.abs(lo.reduce((s, x) => s + x, 0) - Math.SQRT2) < 1e-12, family);
    for (let m = 0; m < L; m += 2) {
      assert.ok(Math.abs(dot(lo, lo, m) - (m === 0 ? 1 : 0)) < 1e-12, `${family} lo shift ${m}`);
      assert.ok(Math.abs(dot(lo, hi, m)) < 1e-12, `${family} lo/hi shift ${m}`);
    }
    for (let k = 0; k < L / 2; k++) { // L/2 vanishing moments of the high-pass
      assert.ok(Math.abs(hi.reduce((s, x, i) => s + x * i ** k, 0)) < 1e-9, `${family} moment ${k}`);
    }
  }
  assert.throws(
    () => waveletFilters("coif1"),
    /waveletFamily=coif1 is not implemented.*use one of db1, db2, db3/,
  );
  assert.throws(() => applyTiny(waveft, { waveletFamily: "db4", nFrequency: 4 }), /waveletFamily=db4/);
});

Deno.test("waveft: useIdwt=false puts scaling c at the positions", () => {
  const { applied, layers: [layer] } = withRandomSpectrum(
    { targets: "down", nFrequency: 50, scaling: 2, useIdwt: false },
    ["layers.0.mlp.down"],
  );
  const want = Array.from({ length: 16 }, () => new Array(24).fill(0));
  const c = layer.spectrum.dataSync();
  layer.locations.rows.forEach((r, l) => (want[r][layer.locations.cols[l]] = 2 * c[l]));
  assert.ok(maxAbsDiff(layer.delta().dataSync(), want.flat()) < 1e-6);
  applied.dispose();
});

Deno.test("waveft: zero at init (identity), normal std 0.01 with initWeights=false; contract; state", () => {
  assertIdentityAtInit(waveft, { targets: "all-linear", nFrequency: 40 });
  const { applied } = applyTiny(waveft, { targets: "q", nFrequency: 128, initWeights: false });
  const c = applied.trainable.flatMap((v) => Array.from(v.dataSync()));
  const std = Math.sqrt(c.reduce((s, x) => s + x * x, 0) / c.length);
  assert.ok(Math.abs(std - 0.01) < 0.002, `${std}`);
  applied.dispose();
  const before = logitsOf(tinyModel(), tinyBatch());
  const moved = applyTiny(waveft, {
    targets: "all-linear",
    nFrequency: 40,
    initWeights: false,
    scaling: 500,
  });
  assert.ok(maxAbsDiff(before, logitsOf(moved.model, tinyBatch())) > 1e-4);
  moved.applied.dispose();
  checkContract(waveft, { targets: "q+k+v+o", nFrequency: 40, waveletFamily: "db2" });
  assertStateRoundTrip(waveft, { targets: "all-linear", nFrequency: 30, waveletFamily: "db3" });
});

Deno.test("waveft: n per layer, proportional budgets as PEFT; no PEFT export", () => {
  const { applied } = applyTiny(waveft, { targets: "attn", nFrequency: 64 });
  assert.equal(trainableCount(applied), TINY_CONFIG.nLayers * 4 * 64);
  assert.equal(applied.peftExport, undefined);
  applied.dispose();
  // q [16x16]=256, k,v [8x16]=128 each, gate/up [24x16]=384: total 1280, budget 10 * 5 = 50.
  // Shares 50 * {256, 128, 128, 384, 384} / 1280 = 10, 5, 5, 15, 15.
  const shapes = new Map([["q", { out: 16, in: 16 }], ["k", { out: 8, in: 16 }], ["v", { out: 8, in: 16 }], [
    "g",
    { out: 24, in: 16 },
  ], ["u", { out: 24, in: 16 }]]);
  assert.deepEqual([...waveftBudgets(shapes, { nFrequency: 10, proportionalParameters: true }).values()], [
    10,
    5,
    5,
    15,
    15,
  ]);
  // Halves round to even (Python's round) and every layer keeps at least 1: budget 2 * 3 = 6 over
  // {1, 1, 6} of 8: 0.75 -> 1, 0.75 -> 1, 4.5 -> 4.
  const tiny = new Map([["a", { out: 1, in: 1 }], ["b", { out: 1, in: 1 }], ["c", { out: 2, in: 3 }]]);
  assert.deepEqual([...waveftBudgets(tiny, { nFrequency: 2, proportionalParameters: true }).values()], [
    1,
    1,
    4,
  ]);
  const prop = applyTiny(waveft, { targets: "q,k", nFrequency: 20, proportionalParameters: true });
  // q 256, k 128 per layer, 4 targets, budget 80 over 768: q 80*256/768 = 26.67 -> 27, k 13.33 -> 13.
  assert.equal(trainableCount(prop.applied), 2 * (27 + 13));
  prop.applied.dispose();
  assert.throws(
    () => applyTiny(waveft, { targets: "k", nFrequency: 200 }),
    /nFrequency=200 exceeds out \* in = 128 of layers.0.attn.k/,
  );
});
