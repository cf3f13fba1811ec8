/**
 * TinyLoRA: A and B are the balanced top-r singular factors of W (checked through the defining
 * identities and an independent power iteration), dW = B (sum_i v_i P_i) A in float64 loops, the
 * projections' law and seeding, PEFT's weight-tying groups evaluated by hand, init, the contract
 * and the PEFT export's layout (its logits are proven in peft_export_test.ts).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { tinylora, TinyloraLinear, tyingGroups } from "./tinylora.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, assertIdentityAtInit, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** [rows, cols] row-major as number[][]. */
function rowsOf(data: ArrayLike<number>, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => data[i * cols + j]));
}

/** Largest singular value of W by power iteration on W^T W (float64). */
function topSingular(w: number[][]): number {
  let x = w[0].map((_, j) => Math.cos(j + 1));
  let s = 0;
  for (let it = 0; it < 500; it++) {
    const wx = w.map((row) => row.reduce((a, v, j) => a + v * x[j], 0));
    const y = x.map((_, j) => w.reduce((a, row, i) => a + row[j] * wx[i], 0));
    const n = Math.hypot(...y);
    x = y.map((v) => v / n);
    s = Math.sqrt(n);
  }
  return s;
}

Deno.test("tinylora: A, B are the balanced top-r singular factors of W", () => {
  const { model: adapted, applied } = applyTiny(tinylora, { targets: "k,down", rank: 3, u: 4 });
  const model = tinyModel(); // the same seeded base weights
  for (const name of ["layers.0.attn.k", "layers.1.mlp.down"]) {
    const layer = adapted.linear(name) as TinyloraLinear;
    const [out, inF] = [layer.outFeatures, layer.inFeatures];
    const w = rowsOf(model.linear(name).denseWeight().dataSync(), out, inF);
    const a = rowsOf(layer.a.dataSync(), 3, inF);
    const b = rowsOf(layer.b.dataSync(), out, 3);
    // A A^T = B^T B = diag(s), s descending.
    const s = [0, 1, 2].map((j) => a[j].reduce((t, x) => t + x * x, 0));
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 3; k++) {
        const aa = a[j].reduce((t, x, q) => t + x * a[k][q], 0);
        const bb = b.reduce((t, row) => t + row[j] * row[k], 0);
        assert.ok(Math.abs(aa - (j === k ? s[j] : 0)) < 1e-4 && Math.abs(bb - (j === k ? s[j] : 0)) < 1e-4);
      }
    }
    assert.ok(s[0] >= s[1] && s[1] >= s[2]);
    // Singular pairs: W A^T = B diag(s) and W^T B = A^T diag(s).
    for (let j = 0; j < 3; j++) {
      for (let p = 0; p < out; p++) {
        assert.ok(Math.abs(w[p].reduce((t, x, q) => t + x * a[j][q], 0) - b[p][j] * s[j]) < 1e-4);
      }
      for (let q = 0; q < inF; q++) {
        assert.ok(Math.abs(w.reduce((t, row, p) => t + row[q] * b[p][j], 0) - a[j][q] * s[j]) < 1e-4);
      }
    }
    // The first is the largest singular value.
    assert.ok(Math.abs(s[0] - topSingular(w)) < 1e-4 * s[0], `${name}: ${s[0]} vs ${topSingular(w)}`);
  }
  applied.dispose();
  model.dispose();
  // At full rank B A = W; a rank above min(out, in) is capped as PEFT (actual_r).
  const full = applyTiny(tinylora, { targets: "k", rank: 20, u: 3 });
  const k = full.model.linear("layers.0.attn.k") as TinyloraLinear;
  assert.deepEqual(k.a.shape, [8, 16]);
  const ba = tf.matMul(k.b, k.a).dataSync();
  assert.ok(maxAbsDiff(ba, tinyModel().linear("layers.0.attn.k").denseWeight().dataSync()) < 1e-5);
  full.applied.dispose();
});

Deno.test("tinylora: dW = B (sum_i v_i P_i) A in float64, the forward adds x dW^T, P ~ N(0, 1/r) per layer seed", () => {
  const u = 6;
  const r = 2;
  const { model, applied } = applyTiny(tinylora, { targets: "q,up", rank: r, u });
  const layerOf = (m: typeof model, n: string) => m.linear(n) as TinyloraLinear;
  for (const v of applied.trainable) v.assign(tf.randomNormal([u], 0, 1, "float32", 5));
  for (const name of ["layers.0.attn.q", "layers.1.mlp.up"]) {
    const l = layerOf(model, name);
    const [out, inF] = [l.outFeatures, l.inFeatures];
    const [a, b, p] = [l.a.dataSync(), l.b.dataSync(), l.p.dataSync()];
    const v = Array.from(l.v.dataSync());
    const R = rowsOf(
      Array.from({ length: r * r }, (_, e) => v.reduce((t, vi, i) => t + vi * p[i * r * r + e], 0)),
      r,
      r,
    );
    const want: number[] = [];
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < inF; j++) {
        let t = 0;
        for (let x = 0; x < r; x++) for (let y = 0; y < r; y++) t += b[i * r + x] * R[x][y] * a[y * inF + j];
        want.push(t);
      }
    }
    assert.ok(maxAbsDiff(l.delta().dataSync(), want) < 1e-5, name);
    const x = tf.randomNormal([3, inF], 0, 1, "float32", 4) as tf.Tensor2D;
    const ref = tf.add(l.base.forward(x), tf.matMul(x, l.delta(), false, true));
    assert.ok(maxAbsDiff(l.forward(x).dataSync(), ref.dataSync()) < 1e-5, name);
  }
  // P: fixed by projectionSeed + layer index, not the run seed; std 1/sqrt(r).
  const other = applyTiny(tinylora, { targets: "q,up", rank: r, u }, 77);
  const [p0, p1] = ["layers.0.attn.q", "layers.0.mlp.up"].map((n) => layerOf(model, n).p.dataSync());
  assert.deepEqual(layerOf(other.model, "layers.0.attn.q").p.dataSync(), p0);
  assert.notDeepEqual(p0, p1);
  other.applied.dispose();
  applied.dispose();
  const big = applyTiny(tinylora, { targets: "all-linear", rank: 4, u: 64 });
  const all = [...big.model.linears.values()].flatMap((l) =>
    l instanceof TinyloraLinear ? Array.from(l.p.dataSync()) : []
  );
  const sd = Math.sqrt(all.reduce((t, x) => t + x * x, 0) / all.length);
  assert.ok(Math.abs(sd - 0.5) < 0.02, `std ${sd} vs 1/sqrt(4)`);
  big.applied.dispose();
});

Deno.test("tinylora: PEFT's weight-tying groups, and layers of a group share one v", () => {
  // G = max(1, round(T (1 - w))) (half to even), size = max(1, T // G), group min(t // size, G - 1).
  assert.deepEqual(tyingGroups(14, 0).count, 14);
  assert.deepEqual(tyingGroups(14, 1).groups, new Array(14).fill(0));
  assert.deepEqual(tyingGroups(14, 0.5).groups, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
  assert.deepEqual(tyingGroups(5, 0.5), { groups: [0, 0, 1, 1, 1], count: 2 }); // round(2.5) = 2
  assert.deepEqual(tyingGroups(7, 0.5), { groups: [0, 1, 2, 3, 3, 3, 3], count: 4 }); // round(3.5) = 4
  assert.deepEqual(tyingGroups(3, 0.9), { groups: [0, 0, 0], count: 1 }); // round(0.3) = 0 -> 1
  const { model, applied } = applyTiny(tinylora, { targets: "q+v", u: 3, weightTying: 0.5 });
  // Targets in model order: l0.q, l0.v, l1.q, l1.v; G = 2, size 2.
  const vOf = (n: string) => (model.linear(n) as TinyloraLinear).v;
  assert.equal(vOf("layers.0.attn.q"), vOf("layers.0.attn.v"));
  assert.equal(vOf("layers.1.attn.q"), vOf("layers.1.attn.v"));
  assert.notEqual(vOf("layers.0.attn.q"), vOf("layers.1.attn.q"));
  assert.equal(trainableCount(applied), 2 * 3);
  applied.dispose();
});

Deno.test("tinylora: v = 0 at init (identity), uniform within initVBound; contract; export layout", () => {
  assertIdentityAtInit(tinylora, { targets: "all-linear", u: 4 });
  const { applied } = applyTiny(tinylora, { targets: "all-linear", u: 64, initWeights: "uniform" });
  const v = applied.trainable.flatMap((t) => Array.from(t.dataSync()));
  const max = Math.max(...v.map(Math.abs));
  assert.ok(max <= 0.02 && max > 0.019, `${max}`);
  applied.dispose();
  const before = logitsOf(tinyModel(), tinyBatch());
  const moved = applyTiny(tinylora, { targets: "all-linear", u: 64, initWeights: "uniform", initVBound: 1 });
  assert.ok(maxAbsDiff(before, logitsOf(moved.model, tinyBatch())) > 1e-4);
  moved.applied.dispose();
  checkContract(tinylora, { targets: "q+k+v+o", rank: 2, u: 4, weightTying: 0.5 });
  assert.throws(() => applyTiny(tinylora, { initWeights: false }), /initWeights/);
  const e = applyTiny(tinylora, { targets: "q+v", u: 4 });
  const x = e.applied.peftExport!();
  assert.equal(x.config.peft_type, "TINYLORA");
  assert.deepEqual([x.config.r, x.config.u, x.config.weight_tying, x.config.save_projection], [
    2,
    4,
    0,
    true,
  ]);
  assert.deepEqual(x.tensors.get("base_model.model.model.layers.1.self_attn.v_proj.tinylora_P")!.shape, [
    4,
    2,
    2,
  ]);
  assert.deepEqual(x.tensors.get("base_model.tinylora_v.3")!.shape, [4]);
  assert.equal(x.tensors.size, 4 * 3 + 4);
  e.applied.dispose();
  assert.equal(TINY_CONFIG.nLayers, 2);
});
