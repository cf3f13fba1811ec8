import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { Linear, type LinearModule } from "./linear.ts";
import { recordLayerInputs, watchLayerInputs } from "./layer_inputs.ts";

await initBackend("cpu");

Deno.test("watchLayerInputs: shows each input, keeps the layer's output, restores the layers (also after a throw)", async () => {
  const layer = new Linear("q", tf.variable(tf.tensor2d([[1, 2], [3, 4]]), false), null);
  const model = { linears: new Map<string, LinearModule>([["q", layer]]) };
  const seen: number[][] = [];
  const y = watchLayerInputs(model, ["q"], (_, x) => seen.push([...x.dataSync()]), () => {
    assert.notEqual(model.linears.get("q"), layer);
    return model.linears.get("q")!.forward(tf.tensor2d([[1, 1]])).arraySync();
  });
  assert.deepEqual(seen, [[1, 1]]);
  assert.deepEqual(y, [[3, 7]]);
  assert.equal(model.linears.get("q"), layer);
  assert.throws(() =>
    watchLayerInputs(model, ["q"], () => {}, () => {
      throw new Error("boom");
    }), /boom/);
  assert.equal(model.linears.get("q"), layer);
  await assert.rejects(
    watchLayerInputs(model, ["q"], () => {}, () => Promise.reject(new Error("late"))),
    /late/,
  );
  assert.equal(model.linears.get("q"), layer);
  assert.throws(() => watchLayerInputs(model, ["k"], () => {}, () => 0), /no linear layer named 'k'/);
});

Deno.test("recordLayerInputs: rows per call up to the cap; layers fed the same tensor share one array", () => {
  const linear = (name: string) => new Linear(name, tf.variable(tf.eye(2), false), null);
  const model = { linears: new Map<string, LinearModule>(["q", "k", "o"].map((n) => [n, linear(n)])) };
  const recorded = recordLayerInputs(model, ["q", "k", "o"], () => {
    for (const rows of [[[1, 2]], [[3, 4], [5, 6]]]) {
      const x = tf.tensor2d(rows);
      model.linears.get("q")!.forward(x);
      model.linears.get("k")!.forward(tf.reshape(x, [rows.length, 2])); // same data, another tensor
      model.linears.get("o")!.forward(tf.add(x, 10));
    }
  }, 2);
  const q = recorded.get("q")!;
  assert.deepEqual([...q.inputs], [1, 2, 3, 4]);
  assert.equal(q.rows, 2);
  assert.deepEqual(q.callStarts, [0, 1, 2]);
  assert.equal(recorded.get("k"), q, "q and k read the same tensors: one record");
  assert.deepEqual([...recorded.get("o")!.inputs], [11, 12, 13, 14]);
  assert.notEqual(recorded.get("o")!.inputs, q.inputs);
});
