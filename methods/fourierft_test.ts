/**
 * FourierFT: dW against the definition PEFT computes (real part of numpy-style ifft2 of the dense
 * spectrum, a naive complex inverse DFT in float64 here), the factored forward, the seeded
 * locations, init, the contract and the refused PEFT export.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { fourierft, FourierftLinear, frequencyLocations } from "./fourierft.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, assertIdentityAtInit, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** Re(ifft2(F)) for a dense complex-free spectrum F [rows, cols]: (1/N) sum F[j,k] e^{+2 pi i (jp/rows + kq/cols)}. */
function ifft2Real(f: number[][]): number[][] {
  const [rows, cols] = [f.length, f[0].length];
  return Array.from({ length: rows }, (_, p) =>
    Array.from({ length: cols }, (_, q) => {
      let re = 0;
      for (let j = 0; j < rows; j++) {
        for (let k = 0; k < cols; k++) {
          if (f[j][k] === 0) continue;
          const angle = 2 * Math.PI * ((j * p) / rows + (k * q) / cols);
          re += f[j][k] * Math.cos(angle); // Re(c e^{i a}) for real c
        }
      }
      return re / (rows * cols);
    }));
}

Deno.test("fourierft: dW = scaling Re(ifft2(dense spectrum)) and the forward adds x dW^T", () => {
  const { model, applied } = applyTiny(fourierft, { targets: "k,down", nFrequency: 20, scaling: 150 });
  for (const name of ["layers.0.attn.k", "layers.1.mlp.down"]) { // [8x16] and [16x24]
    const layer = model.linear(name) as FourierftLinear;
    const c = layer.spectrum.dataSync();
    const dense = Array.from({ length: layer.outFeatures }, () => new Array(layer.inFeatures).fill(0));
    layer.locations.rows.forEach((j, l) => (dense[j][layer.locations.cols[l]] = c[l]));
    const want = ifft2Real(dense).flat().map((x) => x * 150);
    const got = layer.delta().dataSync();
    assert.ok(maxAbsDiff(got, want) < 1e-5, `${name}: ${maxAbsDiff(got, want)}`);
    const x = tf.randomNormal([3, layer.inFeatures], 0, 1, "float32", 4) as tf.Tensor2D;
    const ref = tf.add(layer.base.forward(x), tf.matMul(x, layer.delta(), false, true));
    assert.ok(maxAbsDiff(layer.forward(x).dataSync(), ref.dataSync()) < 1e-5, name);
  }
  applied.dispose();
});

Deno.test("fourierft: n distinct seeded locations, equal for equal shapes, bounded by out * in", () => {
  const a = frequencyLocations(50, 8, 16, 777);
  const keys = new Set([...a.rows].map((r, i) => r * 16 + a.cols[i]));
  assert.equal(keys.size, 50);
  assert.ok([...a.rows].every((r) => r >= 0 && r < 8) && [...a.cols].every((c) => c >= 0 && c < 16));
  assert.deepEqual(frequencyLocations(50, 8, 16, 777), a);
  assert.notDeepEqual(frequencyLocations(50, 8, 16, 778), a);
  // All 128 positions: a full permutation.
  const all = frequencyLocations(128, 8, 16, 1);
  assert.equal(new Set([...all.rows].map((r, i) => r * 16 + all.cols[i])).size, 128);
  assert.throws(() => frequencyLocations(129, 8, 16, 1), /nFrequency=129 exceeds out \* in = 128/);
  const { model, applied } = applyTiny(fourierft, { targets: "q", nFrequency: 30 });
  const [l0, l1] = ["layers.0.attn.q", "layers.1.attn.q"].map((n) => model.linear(n) as FourierftLinear);
  assert.deepEqual(l0.locations, l1.locations); // PEFT seeds every layer alike
  applied.dispose();
});

Deno.test("fourierft: standard-normal spectrum by default (function changes), zero with initWeights; contract", () => {
  const { applied } = applyTiny(fourierft, { targets: "q", nFrequency: 200 });
  const c = applied.trainable[0].dataSync() as Float32Array;
  const mean = c.reduce((s, x) => s + x, 0) / c.length;
  const variance = c.reduce((s, x) => s + (x - mean) ** 2, 0) / c.length;
  assert.ok(Math.abs(mean) < 0.25 && Math.abs(variance - 1) < 0.3, `${mean} ${variance}`);
  applied.dispose();
  assertIdentityAtInit(fourierft, { nFrequency: 40, initWeights: true });
  const before = logitsOf(tinyModel(), tinyBatch());
  const moved = applyTiny(fourierft, { nFrequency: 40 });
  assert.ok(maxAbsDiff(before, logitsOf(moved.model, tinyBatch())) > 1e-4);
  moved.applied.dispose();
  checkContract(fourierft, { targets: "q+k+v+o", nFrequency: 40, initWeights: true });
});

Deno.test("fourierft: n trainable values per layer; no PEFT export (locations not PEFT's)", () => {
  const { applied } = applyTiny(fourierft, { targets: "attn", nFrequency: 64 });
  assert.equal(trainableCount(applied), TINY_CONFIG.nLayers * 4 * 64);
  assert.equal(applied.peftExport, undefined);
  applied.dispose();
  assert.throws(
    () => applyTiny(fourierft, { targets: "k", nFrequency: 200 }),
    /exceeds out \* in = 128 of layers.0.attn.k/,
  );
});
