import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { validateQuantConfig } from "./config.ts";
import { QuantizedLinear } from "./linear.ts";
import { quantLayerReport } from "./report.ts";

Deno.test("per-layer relative Frobenius error equals ||W - Ŵ||_F / ||W||_F; the report aggregates layers", async () => {
  await initBackend("cpu");
  const rng = new Rng(31);
  const shape: [number, number] = [12, 32];
  const w = rng.normalArray(12 * 32);
  const a = QuantizedLinear.fromDense(
    "a",
    tf.tensor2d(w, shape),
    validateQuantConfig({ scheme: "nf4", blockSize: 16 }),
  );
  const b = QuantizedLinear.fromDense(
    "b",
    tf.tensor2d(w, shape),
    validateQuantConfig({ scheme: "llm-int8" }),
  );
  const deq = a.denseWeight().dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (w[i] - deq[i]) ** 2;
    den += w[i] ** 2;
  }
  assert.ok(Math.abs(a.quantStats.relativeError! - Math.sqrt(num / den)) < 1e-12);
  const x = rng.normalArray(4 * 32);
  x[3] = 50; // one outlier feature out of 32
  b.forward(tf.tensor2d(x, [4, 32]));
  const r = quantLayerReport([["a", a], ["b", b]]);
  assert.deepEqual(Object.keys(r.layers), ["a", "b"]);
  assert.equal(r.outlierShare, 1 / 32);
  const ea = a.quantStats.relativeError!;
  const eb = b.quantStats.relativeError!;
  assert.ok(Math.abs(r.meanRelativeError! - (ea + eb) / 2) < 1e-15);
  assert.equal(r.maxRelativeError, Math.max(ea, eb));
  assert.ok(eb < ea, "int8 error below nf4's");
  assert.equal(quantLayerReport([["a", a]]).outlierShare, null);
  a.dispose();
  b.dispose();
});
