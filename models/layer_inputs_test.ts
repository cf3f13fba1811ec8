import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend.ts";
import { Linear, type LinearModule } from "./linear.ts";
import { watchLayerInputs } from "./layer_inputs.ts";

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
