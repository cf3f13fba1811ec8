import assert from "node:assert/strict";
import { HF_LAYER_MODULES, hfInLayerName, hfModuleName, ownInLayerName } from "./hf_names.ts";

Deno.test("hf names: the Llama / Qwen module paths, both ways, suffixes kept", () => {
  // Names as they appear in a Hugging Face LlamaForCausalLM / Qwen3ForCausalLM state dict.
  assert.equal(hfInLayerName("attn.q.weight"), "self_attn.q_proj.weight");
  assert.equal(hfInLayerName("attn.v.bias"), "self_attn.v_proj.bias");
  assert.equal(hfInLayerName("attn.k_norm.weight"), "self_attn.k_norm.weight");
  assert.equal(hfInLayerName("mlp_norm.weight"), "post_attention_layernorm.weight");
  assert.equal(hfInLayerName("attn_norm.weight"), "input_layernorm.weight");
  assert.equal(ownInLayerName("mlp.down_proj.weight"), "mlp.down.weight");
  assert.equal(hfInLayerName("attn.qq.weight"), null);
  assert.equal(ownInLayerName("self_attn.rotary_emb.inv_freq"), null);
  for (const [hf, own] of HF_LAYER_MODULES) {
    assert.equal(ownInLayerName(hfInLayerName(`${own}.weight`)!), `${own}.weight`);
    assert.equal(hfInLayerName(ownInLayerName(`${hf}.weight`)!), `${hf}.weight`);
  }
});

Deno.test("hf names: module paths of decoder linears; other names are errors", () => {
  assert.equal(hfModuleName("layers.0.attn.q"), "model.layers.0.self_attn.q_proj");
  assert.equal(hfModuleName("layers.11.mlp.gate"), "model.layers.11.mlp.gate_proj");
  assert.throws(() => hfModuleName("lm_head"), /no Hugging Face name for layer 'lm_head'/);
  assert.throws(() => hfModuleName("layers.0.attn.x"), /no Hugging Face name/);
});
