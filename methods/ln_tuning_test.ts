import assert from "node:assert/strict";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { lnTuning } from "./ln_tuning.ts";
import { plainContext } from "./common.ts";
import { assertTrainsRestFrozen, checkContract } from "./contract_test_utils.ts";
import { applyTiny, trainableCount } from "./method_checks_test_utils.ts";
import { parseMethodConfig } from "./registry.ts";
import { TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

Deno.test("ln-tuning: identity at init, trains only the gains, state round trip, merge is a no-op", () => {
  checkContract(lnTuning, {});
});

Deno.test("ln-tuning: (2 L + 1) dim gains; flags set while applied and restored on dispose", () => {
  const c = TINY_CONFIG;
  const { model, applied } = applyTiny(lnTuning, {});
  assert.equal(trainableCount(applied), (2 * c.nLayers + 1) * c.dim);
  const names = [...applied.state().keys()];
  assert.ok(names.includes("norm.weight") && names.includes("layers.1.mlp_norm.weight"));
  assert.ok(applied.trainable.every((v) => v.trainable));
  assert.equal(model.param("layers.0.attn.q.weight").trainable, false);
  applied.dispose();
  assert.ok(applied.trainable.every((v) => !v.trainable));
  assert.throws(() => applyTiny(lnTuning, { rank: 2 }), /method ln-tuning does not take option 'rank'/);
});

Deno.test("ln-tuning: PEFT's mapping on Qwen2/Qwen3 is post_attention_layernorm alone; norms=all adds every gain", () => {
  for (const architecture of ["Qwen2ForCausalLM", "Qwen3ForCausalLM"]) {
    const config = validateConfig({
      ...TINY_CONFIG,
      architecture,
      qkNorm: architecture === "Qwen3ForCausalLM",
    });
    const model = LlamaModel.random(config, new Rng(1), 0.2);
    const applied = lnTuning.apply(model, parseMethodConfig(lnTuning, {}), plainContext(new Rng(1)));
    // PEFT utils/constants.py: "qwen2"/"qwen3": ["post_attention_layernorm"] = our mlp_norm.
    assert.deepEqual([...applied.state().keys()], ["layers.0.mlp_norm.weight", "layers.1.mlp_norm.weight"]);
    assertTrainsRestFrozen(model, applied);
    applied.dispose();
  }
  const config = validateConfig({ ...TINY_CONFIG, architecture: "Qwen3ForCausalLM", qkNorm: true });
  const model = LlamaModel.random(config, new Rng(1), 0.2);
  const applied = lnTuning.apply(
    model,
    parseMethodConfig(lnTuning, { norms: "all" }),
    plainContext(new Rng(1)),
  );
  assert.equal(
    trainableCount(applied),
    (2 * config.nLayers + 1) * config.dim + 2 * config.nLayers * config.headDim,
  );
  assertTrainsRestFrozen(model, applied);
  applied.dispose();
});
