import assert from "node:assert/strict";
import { Rng } from "../../models/util/rng.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";
import { HQQ_DEFAULTS, hqqQuantize, shrinkLp } from "./schemes/hqq.ts";

/** Student-t (3 degrees of freedom) weights, scale 0.02: heavy tails, as real LLM weights have. */
function heavyTailed(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) {
    let chi2 = 0;
    for (let k = 0; k < 3; k++) chi2 += rng.normal() ** 2;
    w[i] = (0.02 * rng.normal()) / Math.sqrt(chi2 / 3);
  }
  return w;
}

/** Plain round-to-nearest asymmetric min-max per group of `gs` columns, integer zero point. */
function rtn(w: Float32Array, rows: number, cols: number, bits: number, gs: number): Float32Array {
  const maxq = 2 ** bits - 1;
  const out = new Float32Array(w.length);
  for (let i = 0; i < rows; i++) {
    for (let g = 0; g < cols / gs; g++) {
      const seg = Array.from(w.subarray(i * cols + g * gs, i * cols + (g + 1) * gs));
      const lo = Math.min(...seg);
      const s = (Math.max(...seg) - lo) / maxq;
      const z = Math.round(-lo / s);
      seg.forEach((v, j) =>
        out[i * cols + g * gs + j] = (Math.min(maxq, Math.max(0, Math.round(v / s) + z)) - z) * s
      );
    }
  }
  return out;
}

/** [mean |W - Ŵ|, ||W - Ŵ||_F / ||W||_F]. */
function errors(w: Float32Array, d: Float32Array): [number, number] {
  let l1 = 0;
  let l2 = 0;
  let n2 = 0;
  for (let i = 0; i < w.length; i++) {
    l1 += Math.abs(w[i] - d[i]);
    l2 += (w[i] - d[i]) ** 2;
    n2 += w[i] ** 2;
  }
  return [l1 / w.length, Math.sqrt(l2 / n2)];
}

Deno.test("HQQ's reconstruction error is below plain round-to-nearest min-max at the same bits and group size", () => {
  const [rows, cols] = [64, 256];
  const w = heavyTailed(rows, cols, 7);
  for (const scheme of ["hqq4", "hqq3", "hqq2"] as const) {
    const bits = Number(scheme.slice(3));
    for (const blockSize of [16, 64]) {
      const hqq = errors(w, dequantizeArray(quantizeCodes(w, [rows, cols], { scheme, blockSize })));
      const plain = errors(w, rtn(w, rows, cols, bits, blockSize));
      assert.ok(hqq[0] < plain[0], `${scheme}/${blockSize}: mean |err| ${hqq[0]} vs RTN ${plain[0]}`);
      assert.ok(hqq[1] < plain[1], `${scheme}/${blockSize}: relative Frobenius ${hqq[1]} vs RTN ${plain[1]}`);
    }
  }
});

Deno.test("HQQ's solver starts at RTN (4-bit, integer zero) and lowers mean |W - W_r| until it stops", () => {
  const [rows, cols] = [32, 128];
  const w = heavyTailed(rows, cols, 8);
  const r = hqqQuantize(w, [rows, cols], 4, 64);
  const plainL1 = errors(w, rtn(w, rows, cols, 4, 64))[0];
  assert.ok(
    Math.abs(r.errors[0] - plainL1) < 1e-6 * plainL1,
    `first iterate ${r.errors[0]} vs RTN ${plainL1}`,
  );
  assert.ok(r.errors.length >= 2 && r.errors.length <= HQQ_DEFAULTS.iters);
  // Strictly decreasing except the last one when the solver stopped early (hqq's break rule).
  const n = r.errors.length < HQQ_DEFAULTS.iters ? r.errors.length - 1 : r.errors.length;
  for (let i = 1; i < n; i++) assert.ok(r.errors[i] < r.errors[i - 1], `iteration ${i}`);
  if (n < r.errors.length) assert.ok(r.errors[n] >= r.errors[n - 1]);
});

Deno.test("shrink_lp: soft thresholding for p = 1 (the prox of |e|, by brute force), the closed form for p = 0.7", () => {
  // p = 1: argmin_e |e| + beta/2 (e - x)^2 over a fine grid equals sign(x) max(|x| - 1/beta, 0).
  const beta = 10;
  for (const x of [-0.73, -0.1, -0.05, 0, 0.02, 0.1, 0.31, 2]) {
    let best = 0;
    let bestF = Infinity;
    for (let k = -300000; k <= 300000; k++) {
      const e = k * 1e-5;
      const f = Math.abs(e) + (beta / 2) * (e - x) ** 2;
      if (f < bestF) [best, bestF] = [e, f];
    }
    assert.ok(
      Math.abs(shrinkLp(x, beta, 1) - best) <= 1e-5,
      `p=1, x=${x}: ${shrinkLp(x, beta, 1)} vs ${best}`,
    );
  }
  // p = 0.7 (hqq's default): sign(x) relu(|x| - |x|^(p-1) / beta), values worked out by hand.
  assert.ok(Math.abs(shrinkLp(2, 10, 0.7) - 1.9187747603643763) < 1e-12);
  assert.ok(Math.abs(shrinkLp(-0.5, 10, 0.7) - -0.3768855586655084) < 1e-12);
  assert.equal(shrinkLp(0.01, 10, 0.7), 0); // 0.01 - 0.0398... < 0: shrunk to zero
  assert.equal(shrinkLp(0, 10, 0.7), 0);
});

Deno.test("HQQ on the embedded model's layers errs less than RTN min-max (mean |W - W_q|, its objective's L1 side)", async () => {
  const { initBackend } = await import("../../models/backend.ts");
  await initBackend("cpu");
  const { realLayers } = await import("./real_layers_test_utils.ts");
  for (
    const { name, weight, shape: [rows, cols] } of await realLayers(["layers.0.attn.q", "layers.2.mlp.up"])
  ) {
    for (const [scheme, bits] of [["hqq4", 4], ["hqq3", 3]] as const) {
      const hqq = errors(
        weight,
        dequantizeArray(quantizeCodes(weight, [rows, cols], { scheme, blockSize: 64 })),
      );
      const plain = errors(weight, rtn(weight, rows, cols, bits, 64));
      assert.ok(hqq[0] < plain[0], `${name} ${scheme}: mean |err| ${hqq[0]} vs RTN ${plain[0]}`);
    }
  }
});
