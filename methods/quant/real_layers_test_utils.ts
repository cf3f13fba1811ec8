/**
 * Real layers for quantization tests: the embedded default model's linear weights and the input rows
 * they see while the model reads its own training text (the first texts of the pretraining corpus).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadModel } from "../../models/load.ts";
import { pretrainCorpus } from "../../datasets/pretrain_corpus.ts";
import { collectLayerInputs } from "./calibration.ts";

/** One layer: its weight [out, in] and recorded inputs [rows, in]. */
export interface RealLayer {
  name: string;
  weight: Float32Array;
  shape: [number, number];
  inputs: Float32Array;
  rows: number;
}

/** The named layers of the embedded model with up to `maxRows` input rows from `texts` training texts. */
export async function realLayers(names: string[], texts = 16, maxRows = 512): Promise<RealLayer[]> {
  const { model, tokenizer } = await loadModel();
  try {
    const sample = pretrainCorpus().texts.slice(0, texts);
    const inputs = collectLayerInputs(model, names, () => {
      for (const text of sample) {
        const ids = [tokenizer.bosId ?? 0, ...tokenizer.encode(text)].slice(0, model.config.maxSeqLen);
        tf.tidy(() => {
          model.hidden(tf.tensor2d(ids, [1, ids.length], "int32"));
        });
      }
    }, maxRows);
    return names.map((name) => {
      const layer = model.linear(name);
      const w = layer.denseWeight();
      const cal = inputs.get(name)!;
      return {
        name,
        weight: (w.dataSync() as Float32Array).slice(),
        shape: w.shape as [number, number],
        inputs: cal.inputs,
        rows: cal.rows,
      };
    });
  } finally {
    model.dispose();
  }
}
