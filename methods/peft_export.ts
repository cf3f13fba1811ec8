/**
 * Pieces every Hugging Face PEFT export shares: which modules PEFT must wrap (`target_modules`,
 * `layers_to_transform`) and the row order of tensors over a layer's outputs. An export is read
 * against the base as `models/hf.ts` writes it, so for llama2.c (interleaved-RoPE) models the q/k
 * rows of every output-side tensor are permuted exactly like the checkpoint's q/k weights.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { LlamaConfig } from "../models/config.ts";
import { hfRowOrder } from "../models/hf.ts";
import { hfModuleName } from "../models/util/hf_names.ts";
import type { NamedArray } from "./types.ts";

/**
 * The `adapter_config.json` fields that make PEFT's `check_target_module_exists` wrap exactly
 * `targets` (our layer names) on a model with `nLayers` decoder layers:
 * - the same module kinds in every layer: `target_modules` = the kinds (`q_proj`, ...);
 * - the same kinds in some layers: the kinds plus `layers_to_transform` (sorted layer indices) and
 *   `layers_pattern: "layers"`;
 * - anything else (`re:layers\.0\.attn\.q$|layers\.1\.mlp\.down$`): the full module names, which
 *   PEFT matches exactly (`model.layers.0.self_attn.q_proj`).
 */
export function peftTargetFields(targets: string[], nLayers: number): Record<string, unknown> {
  const parsed = targets.map((t) => {
    const full = hfModuleName(t);
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(full)!;
    return { full, layer: Number(m[1]), kind: full.split(".").pop()! };
  });
  const kinds = [...new Set(parsed.map((p) => p.kind))].sort();
  const layers = [...new Set(parsed.map((p) => p.layer))].sort((a, b) => a - b);
  const have = new Set(parsed.map((p) => `${p.layer}.${p.kind}`));
  const product = kinds.length * layers.length === have.size;
  if (!product) return { target_modules: parsed.map((p) => p.full).sort() };
  if (layers.length === nLayers) return { target_modules: kinds };
  return { target_modules: kinds, layers_to_transform: layers, layers_pattern: "layers" };
}

/**
 * A tensor whose rows are layer `name`'s outputs (LoRA's B, DoRA's magnitude, VeRA's lambda_b) as
 * PEFT must see it: rows in the Hugging Face checkpoint's order (`hfRowOrder`, shared with the
 * checkpoint writer), unchanged except for q/k of interleaved-RoPE models.
 */
export function outputRows(name: string, t: tf.Tensor, config: LlamaConfig): NamedArray {
  return { data: hfRowOrder(name, t.dataSync() as Float32Array, config), shape: [...t.shape] };
}

/** Whether layer `name`'s output rows are permuted in the Hugging Face checkpoint of this model. */
export function permutedInHf(name: string, config: LlamaConfig): boolean {
  return config.ropeStyle === "interleaved" && /(?:^|\.)attn\.[qk]$/.test(name);
}
