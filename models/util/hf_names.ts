/**
 * Our decoder's layer names and Hugging Face's, in one table: the module path inside a decoder
 * layer of `LlamaForCausalLM` / `Qwen2ForCausalLM` / `Qwen3ForCausalLM` for each of our per-layer
 * module names. Checkpoint I/O (`models/hf.ts`) and the PEFT exports (`methods/`) both read it.
 * @module
 */

/** [Hugging Face module inside `model.layers.N`, our module inside `layers.N`]. */
export const HF_LAYER_MODULES: readonly (readonly [hf: string, own: string])[] = [
  ["input_layernorm", "attn_norm"],
  ["post_attention_layernorm", "mlp_norm"],
  ["self_attn.q_proj", "attn.q"],
  ["self_attn.k_proj", "attn.k"],
  ["self_attn.v_proj", "attn.v"],
  ["self_attn.o_proj", "attn.o"],
  ["self_attn.q_norm", "attn.q_norm"],
  ["self_attn.k_norm", "attn.k_norm"],
  ["mlp.gate_proj", "mlp.gate"],
  ["mlp.up_proj", "mlp.up"],
  ["mlp.down_proj", "mlp.down"],
];

/**
 * Hugging Face's name for a name inside one decoder layer, with any tensor suffix kept:
 * `attn.q.weight` -> `self_attn.q_proj.weight`, `mlp_norm.weight` ->
 * `post_attention_layernorm.weight`; null for a name not in the table.
 */
export function hfInLayerName(own: string): string | null {
  const hit = HF_LAYER_MODULES.find(([, o]) => own === o || own.startsWith(`${o}.`));
  return hit ? hit[0] + own.slice(hit[1].length) : null;
}

/** Our name for a Hugging Face name inside one decoder layer (the inverse of {@link hfInLayerName}). */
export function ownInLayerName(hf: string): string | null {
  const hit = HF_LAYER_MODULES.find(([h]) => hf === h || hf.startsWith(`${h}.`));
  return hit ? hit[1] + hf.slice(hit[0].length) : null;
}

/**
 * Hugging Face's module path of one of our decoder linear layers:
 * `layers.0.attn.q` -> `model.layers.0.self_attn.q_proj`. Throws for a name outside the decoder
 * layers' table.
 */
export function hfModuleName(name: string): string {
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  const inner = m && hfInLayerName(m[2]);
  if (!m || !inner) throw new Error(`no Hugging Face name for layer '${name}'`);
  return `model.layers.${m[1]}.${inner}`;
}
