import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { KronLinear, lokr } from "./lokr.ts";
import { factorization, kronDense, kronMatMul, kronShape } from "./kron.ts";
import { checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("lokr: identity at init, trains, frozen base, state round trip, merges (low-rank and full W2)", () => {
  checkContract(lokr, { rank: 1, alpha: 2, targets: "q+k+v+o" });
  checkContract(lokr, { rank: 4, alpha: 4, targets: "mlp" });
});

Deno.test("factorization follows LyCORIS/PEFT: closest to sqrt, or the given factor", () => {
  assert.deepEqual(factorization(256), [16, 16]);
  assert.deepEqual(factorization(128), [8, 16]);
  assert.deepEqual(factorization(127), [1, 127]);
  assert.deepEqual(factorization(24), [4, 6]);
  assert.deepEqual(factorization(8), [2, 4]);
  assert.deepEqual(factorization(288), [16, 18]);
  assert.deepEqual(factorization(128, 4), [4, 32]);
  assert.deepEqual(factorization(128, 3), [2, 64]);
  assert.deepEqual(kronShape(8, 24, -1), { left: [2, 4], right: [4, 6] });
});

Deno.test("kron: dense product matches the definition and the vec trick matches x kron^T", () => {
  const w1 = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const w2 = tf.tensor2d([[1, -1], [0.5, 2], [3, 0]]);
  const k = kronDense(w1, w2).arraySync();
  assert.equal(k.length, 6);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let p = 0; p < 3; p++) {
        for (let q = 0; q < 2; q++) {
          assert.equal(k[i * 3 + p][j * 2 + q], w1.arraySync()[i][j] * w2.arraySync()[p][q]);
        }
      }
    }
  }
  const x = tf.randomNormal([5, 6], 0, 1, "float32", 3) as tf.Tensor2D;
  const want = tf.matMul(x, kronDense(w1, w2), false, true).dataSync();
  assert.ok(maxAbsDiff(kronMatMul(x, w1, [w2]).dataSync(), want) < 1e-5);
  // W2 = B A given as factors.
  const b = tf.randomNormal([3, 2], 0, 1, "float32", 4) as tf.Tensor2D;
  const a = tf.randomNormal([2, 2], 0, 1, "float32", 5) as tf.Tensor2D;
  const want2 = tf.matMul(x, kronDense(w1, tf.matMul(b, a)), false, true).dataSync();
  assert.ok(maxAbsDiff(kronMatMul(x, w1, [b, a]).dataSync(), want2) < 1e-5);
});

Deno.test("lokr: W1 zero, W2 low-rank below max/2 else full; parameter count closed form", () => {
  const c = TINY_CONFIG;
  const kv = c.nKvHeads * c.headDim; // 8 -> (2, 4); dim 16 -> (4, 4); hidden 24 -> (4, 6)
  // rank 1: q [16,16]: W1 4x4 + B A (4+4); k,v [8,16]: W1 2x4 + (4+4); o: like q.
  const low = applyTiny(lokr, { rank: 1, targets: "q+k+v+o" });
  assert.equal(kv, 8);
  assert.equal(trainableCount(low.applied), c.nLayers * (2 * (16 + 8) + 2 * (8 + 8)));
  const q = low.model.linear("layers.0.attn.q") as KronLinear;
  assert.ok(q.w1.dataSync().every((x) => x === 0));
  assert.deepEqual(q.w2.map((v) => v.shape), [[4, 1], [1, 4]]);
  low.applied.dispose();
  // rank 2 >= 4/2: full W2 [4, 4] (q), [4, 4] (k: right factors of 8x16 are 4 and 4).
  const full = applyTiny(lokr, { rank: 2, targets: "q,k" });
  assert.equal(trainableCount(full.applied), c.nLayers * ((16 + 16) + (8 + 16)));
  full.applied.dispose();
  // decomposeFactor 2: q [16,16] -> W1 [2, 2], W2 [8, 8] low-rank r=1: 4 + 16.
  const f2 = applyTiny(lokr, { rank: 1, targets: "q", decomposeFactor: 2 });
  assert.equal(trainableCount(f2.applied), c.nLayers * (4 + 16));
  f2.applied.dispose();
});

Deno.test("lokr: forward = base + s kron(W1, W2) x and deltaWeights gives that update", () => {
  const { model, applied } = applyTiny(lokr, { rank: 1, alpha: 3, targets: "down" });
  const layer = model.linear("layers.0.mlp.down") as KronLinear;
  layer.w1.assign(tf.randomNormal(layer.w1.shape, 0, 1, "float32", 8));
  const x = tf.randomNormal([4, TINY_CONFIG.hiddenDim], 0, 1, "float32", 9) as tf.Tensor2D;
  const dW = applied.deltaWeights!().get("layers.0.mlp.down")!;
  assert.deepEqual(dW.shape, [TINY_CONFIG.dim, TINY_CONFIG.hiddenDim]);
  const want = tf.add(layer.base.forward(x), tf.matMul(x, dW, false, true));
  assert.ok(maxAbsDiff(layer.forward(x).dataSync(), want.dataSync()) < 1e-5);
  assert.throws(() => applyTiny(lokr, { decomposeFactor: 0 }), /option 'decomposeFactor'/);
  applied.dispose();
});
