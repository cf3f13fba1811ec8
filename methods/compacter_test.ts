import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { compacter, phmWeight } from "./compacter.ts";
import {
  applyTiny,
  assertIdentityAtInit,
  assertStateRoundTrip,
  assertTrainsFrozenBase,
  trainableCount,
} from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("compacter: identity at init", () => assertIdentityAtInit(compacter, { bottleneck: 8, phm: 4 }));

Deno.test("compacter: PHM weight is the sum of Kronecker products kron(A_i, s_i t_i^T)", () => {
  const [n, p, q, r] = [2, 3, 2, 2];
  const a = tf.tensor3d([1, 2, 3, 4, -1, 0.5, 2, -3], [n, n, n]);
  const s = tf.tensor3d([1, 0, 2, 1, -1, 3, 0.5, 2, 1, -1, 0, 1], [n, p, r]);
  const t = tf.tensor3d([1, 2, -1, 0, 3, 1, 2, -2], [n, q, r]);
  const w = phmWeight(a, s, t).arraySync();
  const [A, S, T] = [a.arraySync(), s.arraySync(), t.arraySync()];
  for (let row = 0; row < n * p; row++) {
    for (let col = 0; col < n * q; col++) {
      let expected = 0;
      for (let i = 0; i < n; i++) {
        const [ai, u, ci, v] = [Math.floor(row / p), row % p, Math.floor(col / q), col % q];
        let bi = 0;
        for (let k = 0; k < r; k++) bi += S[i][u][k] * T[i][v][k];
        expected += A[i][ai][ci] * bi;
      }
      assert.ok(Math.abs(w[row][col] - expected) < 1e-5, `W[${row}][${col}] = ${w[row][col]} != ${expected}`);
    }
  }
});

Deno.test("compacter: trainable parameters = n^3 + L * 2 (2 r (d + b) + b + d); A is shared", () => {
  const { dim: d, nLayers: l } = TINY_CONFIG;
  for (const [n, b, r] of [[4, 8, 1], [2, 4, 2]]) {
    const { applied } = applyTiny(compacter, { phm: n, bottleneck: b, rank: r });
    assert.equal(trainableCount(applied), n ** 3 + l * 2 * (2 * r * (d + b) + b + d));
    const shared = [...applied.state().keys()].filter((k) => k.includes("phm_rule"));
    assert.deepEqual(shared, ["compacter.phm_rule"]);
    assert.deepEqual(applied.state().get("compacter.phm_rule")!.shape, [n, n, n]);
    applied.dispose();
  }
});

Deno.test("compacter: phm must divide the dim and the bottleneck", () => {
  assert.throws(
    () => applyTiny(compacter, { phm: 3 }),
    /--opt phm=3 must divide the model dim 16 and --opt bottleneck=16/,
  );
  assert.throws(() => applyTiny(compacter, { phm: 4, bottleneck: 6 }), /--opt bottleneck=6/);
});

Deno.test("compacter: trains with a frozen base (shared factors get gradients) and disposes cleanly", () => {
  const { model, applied } = applyTiny(compacter, { bottleneck: 8 });
  const shared = applied.trainable[0].dataSync().slice();
  assertTrainsFrozenBase(model, applied);
  assert.ok(maxAbsDiff(shared, applied.trainable[0].dataSync()) > 0, "shared factors did not train");
  applied.dispose();
  assert.ok(maxAbsDiff(logitsOf(tinyModel(), tinyBatch()), logitsOf(model, tinyBatch())) < 1e-6);
});

Deno.test("compacter: state round trip", () => assertStateRoundTrip(compacter, { bottleneck: 8, phm: 2 }));
