/**
 * Seeded random weights of a decoder at any size, drawn as `LlamaModel.random` draws them
 * (`initValues`), stored as a bfloat16 checkpoint holds them. `deno task make-model` writes them to
 * a folder; `deno task perf --workload NAME` builds the same model in memory.
 * @module
 */
import type { LlamaConfig } from "./config.ts";
import { initValues, isStorableWeight, LlamaModel } from "./llama.ts";
import { f32ToBf16Bits } from "./safetensors.ts";
import { StoredTensor } from "./stored.ts";
import type { Rng } from "./util/rng.ts";

/** float32 values as bfloat16 bit patterns (round to nearest even). */
export function toBf16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = f32ToBf16Bits(values[i]);
  return bits;
}

/**
 * Every parameter of `config`, seeded by `rng`: linear weights and the embedding table as bfloat16
 * {@link StoredTensor}s (outside the tfjs heap, as a bf16 checkpoint loads), norms and biases as
 * float32. The input of `LlamaModel.fromWeights`.
 */
export function randomStoredWeights(config: LlamaConfig, rng: Rng): Map<string, Float32Array | StoredTensor> {
  const weights = new Map<string, Float32Array | StoredTensor>();
  for (const [name, shape] of LlamaModel.parameterShapes(config)) {
    const values = initValues(name, shape.reduce((a, b) => a * b, 1), config.nLayers, rng);
    weights.set(
      name,
      isStorableWeight(name) && shape.length === 2
        ? new StoredTensor("BF16", toBf16Bits(values), shape)
        : values,
    );
  }
  return weights;
}
