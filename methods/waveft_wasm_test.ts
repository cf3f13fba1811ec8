import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { tinyModel } from "./tiny_test_utils.ts";
import { waveft } from "./waveft.ts";

await initBackend("wasm");

Deno.test("waveft on the wasm backend: the filter taps' indices stay in range (the catalogue run failed with GatherV2)", () => {
  const model = tinyModel(3);
  const applied = waveft.apply(
    model,
    parseMethodConfig(waveft, waveft.contract!.testOptions),
    plainContext(new Rng(3)),
  );
  try {
    const deltas = applied.deltaWeights!();
    for (const [name, d] of deltas) {
      const values = d.dataSync();
      assert.ok(values.every(Number.isFinite), name);
    }
    tf.dispose([...deltas.values()]);
  } finally {
    applied.dispose();
    model.dispose();
  }
});
