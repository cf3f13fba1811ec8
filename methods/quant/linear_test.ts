import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { QuantizedLinear } from "./linear.ts";
import { BLOCK_SCHEMES, QUANT_SCHEMES, validateQuantConfig } from "./config.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`QuantizedLinear (${backend}): forward and input gradient use the dequantized weight`, async () => {
    await initBackend(backend);
    const rng = new Rng(4);
    const shape: [number, number] = [24, 64];
    const w = rng.normalArray(shape[0] * shape[1]);
    const config = validateQuantConfig({ scheme: "nf4", doubleQuant: true });
    const deq = dequantizeArray(quantizeCodes(w, shape, config));
    const layer = QuantizedLinear.fromDense("l", tf.tensor2d(w, shape), config);
    const x = tf.tensor2d(rng.normalArray(3 * 64), [3, 64]);
    const wd = tf.tensor2d(deq, shape);
    const expected = tf.matMul(x, wd, false, true).dataSync();
    const got = layer.forward(x).dataSync();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-4);
    // d/dx sum(y * c) = c W_deq, through the custom gradient.
    const c = tf.tensor2d(rng.normalArray(3 * 24), [3, 24]);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.forward(xx as tf.Tensor2D), c)))(x).dataSync();
    const ref = tf.matMul(c, wd).dataSync();
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - ref[i]) < 1e-4);
    // No float copy of the weight stays resident: only the packed tensors remain.
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      layer.forward(x);
    });
    assert.equal(tf.memory().numTensors, before);
    layer.dispose();
  });
}

Deno.test("a model whose base is quantized frees every quantized layer on dispose (every scheme, with a LoRA on top)", async () => {
  await initBackend("cpu");
  const { tinyModel } = await import("../tiny_test_utils.ts");
  const { lora } = await import("../lora.ts");
  const { parseMethodConfig } = await import("../registry.ts");
  const { plainContext } = await import("../common.ts");
  for (const scheme of QUANT_SCHEMES.filter((s) => s !== "none")) {
    for (const doubleQuant of BLOCK_SCHEMES.includes(scheme) ? [false, true] : [false]) {
      const before = tf.memory().numTensors;
      const model = tinyModel();
      const config = validateQuantConfig({ scheme, doubleQuant });
      for (const [name, layer] of [...model.linears]) {
        if (!name.startsWith("layers.")) continue;
        const cal = config.scheme.startsWith("gptq")
          ? { inputs: new Rng(2).normalArray(8 * layer.inFeatures), rows: 8 }
          : null;
        model.linears.set(
          name,
          QuantizedLinear.fromDense(name, layer.denseWeight(), config, layer.bias, cal),
        );
        model.params.get(`${name}.weight`)?.dispose();
        model.params.delete(`${name}.weight`);
      }
      const applied = lora.apply(model, parseMethodConfig(lora, { rank: 2 }), plainContext(new Rng(1)));
      applied.dispose();
      model.dispose();
      assert.equal(tf.memory().numTensors, before, `${scheme}${doubleQuant ? "+dq" : ""} leaks tensors`);
    }
  }
});
