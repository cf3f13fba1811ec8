import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { readSafetensorsFile } from "../models/safetensors.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "../methods/common.ts";
import { lora } from "../methods/lora.ts";
import { parseMethodConfig } from "../methods/registry.ts";
import { exportSetupNotes, quantNotes, saveAdapter, sequenceHeadOf } from "./save_adapter.ts";

await initBackend("cpu");

const dir = await Deno.makeTempDir({ prefix: "peft-adapter-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test("saveAdapter: the method's tensors, and PEFT's layout (lora_A [r, in], lora_B [out, r] under HF names)", async () => {
  const model = LlamaModel.random(
    validateConfig({
      dim: 16,
      hiddenDim: 24,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      vocabSize: 32,
      tiedEmbeddings: true,
    }),
    new Rng(2),
  );
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 3, alpha: 6, targets: "q+v" }),
    plainContext(new Rng(1)),
  );
  const out = join(dir, "lora", "run-1");
  await saveAdapter(out, applied);
  const own = await readSafetensorsFile(join(out, "adapter.safetensors"));
  const state = applied.state();
  assert.deepEqual([...own.tensors.keys()].sort(), [...state.keys()].sort());
  for (const [name, t] of state) {
    assert.deepEqual(own.tensors.get(name)!.shape, t.shape);
    assert.deepEqual(own.tensors.get(name)!.data, t.data);
  }
  const config = JSON.parse(await Deno.readTextFile(join(out, "adapter_config.json")));
  assert.deepEqual([config.peft_type, config.r, config.lora_alpha, config.target_modules], ["LORA", 3, 6, [
    "q_proj",
    "v_proj",
  ]]);
  const peft = await readSafetensorsFile(join(out, "adapter_model.safetensors"));
  // q is [16, 16] and v [8, 16] (2 KV heads of 4): PEFT stores A as [r, in] and B as [out, r].
  for (const layer of [0, 1]) {
    const p = `base_model.model.model.layers.${layer}.self_attn`;
    assert.deepEqual(peft.tensors.get(`${p}.q_proj.lora_A.weight`)!.shape, [3, 16]);
    assert.deepEqual(peft.tensors.get(`${p}.q_proj.lora_B.weight`)!.shape, [16, 3]);
    assert.deepEqual(peft.tensors.get(`${p}.v_proj.lora_A.weight`)!.shape, [3, 16]);
    assert.deepEqual(peft.tensors.get(`${p}.v_proj.lora_B.weight`)!.shape, [8, 3]);
  }
  assert.equal(peft.tensors.size, 8);
  applied.dispose();
  model.dispose();
});

Deno.test("saveAdapter: a method without a PEFT layout writes only its own tensors", async () => {
  const out = join(dir, "plain");
  await saveAdapter(out, { state: () => new Map([["x", { data: new Float32Array([1, 2]), shape: [2] }]]) });
  assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["adapter.safetensors"]);
  assert.deepEqual(
    (await readSafetensorsFile(join(out, "adapter.safetensors"))).tensors.get("x")!.data,
    new Float32Array([1, 2]),
  );
});

Deno.test("sequenceHeadOf: a classify run's head (weight, bias, pooling); none for other tasks", async () => {
  const { variableOf } = await import("../models/variables.ts");
  const tf = await import("@tensorflow/tfjs-core");
  const w = variableOf(() => tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), true);
  const b = variableOf(() => tf.tensor1d([0.5, -0.5]), true);
  const task = { headVariables: [w, b] };
  const head = sequenceHeadOf(task, { task: "classify", pooling: "last" })!;
  assert.deepEqual(head.weight.shape, [2, 3]);
  assert.deepEqual(Array.from(head.bias.data), [0.5, -0.5]);
  assert.equal(head.pooling, "last");
  assert.equal(sequenceHeadOf({ headVariables: [] }, { task: "retrieve", pooling: "mean" }), undefined);
  tf.dispose([w, b]);
});

Deno.test("quantNotes: the scheme, block size and double quantization PEFT's base needs, with bitsandbytes' matching settings", () => {
  assert.deepEqual(quantNotes(undefined), []);
  assert.deepEqual(quantNotes({ scheme: "none" }), []);
  // nf4 with the defaults (block 64, bitsandbytes' Params4bit block size) and double quant.
  const nf4 = quantNotes({ scheme: "nf4", doubleQuant: true }).join("\n");
  assert.match(nf4, /--quant nf4 --block-size 64 --double-quant/);
  assert.match(nf4, /scheme nf4, block size 64, double quantization on/);
  assert.match(nf4, /bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True/);
  // Another block size cannot come from BitsAndBytesConfig: the note says so and how.
  const fp4 = quantNotes({ scheme: "fp4", blockSize: 128 }).join("\n");
  assert.match(fp4, /block size 128, no double quantization/);
  assert.match(fp4, /always uses blocks of 64, not this run's 128/);
  assert.match(fp4, /quantize_4bit\(W, blocksize=128, quant_type="fp4", compress_statistics=False\)/);
  // GPTQ's own default group (128) and its calibration caveat; llm-int8's threshold.
  const gptq = quantNotes({ scheme: "gptq4" }).join("\n");
  assert.match(gptq, /block size 128/);
  assert.match(gptq, /calibration sample/);
  assert.match(quantNotes({ scheme: "llm-int8", outlierThreshold: 4 }).join("\n"), /llm_int8_threshold=4\)/);
  assert.match(quantNotes({ scheme: "bf16" }).join("\n"), /torch_dtype=torch.bfloat16/);
});

Deno.test("exportSetupNotes: BOFT with several butterfly factors needs PEFT's CUDA extension; one factor does not", () => {
  assert.match(exportSetupNotes({ peft_type: "BOFT", boft_n_butterfly_factor: 2 }).join(), /fbd_cuda/);
  assert.deepEqual(exportSetupNotes({ peft_type: "BOFT", boft_n_butterfly_factor: 1 }), []);
  assert.deepEqual(exportSetupNotes({ peft_type: "LORA" }), []);
});

Deno.test("saveAdapter: an export of a run on a quantized base says in README.md how PEFT's base must be quantized", async () => {
  const model = LlamaModel.random(
    validateConfig({ dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 32 }),
    new Rng(2),
  );
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 2, alpha: 4, targets: "q+v" }),
    plainContext(new Rng(1)),
  );
  const quantized = join(dir, "quantized");
  await saveAdapter(quantized, applied, undefined, { scheme: "nf4", blockSize: 64, doubleQuant: true });
  assert.deepEqual([...Deno.readDirSync(quantized)].map((e) => e.name).sort(), [
    "README.md",
    "adapter.safetensors",
    "adapter_config.json",
    "adapter_model.safetensors",
  ]);
  const readme = await Deno.readTextFile(join(quantized, "README.md"));
  assert.match(readme, /quantized the same way \(scheme nf4, block size 64, double quantization on/);
  // Unquantized: no README at all.
  const plain = join(dir, "unquantized");
  await saveAdapter(plain, applied, undefined, { scheme: "none" });
  assert.equal([...Deno.readDirSync(plain)].some((e) => e.name === "README.md"), false);
  // A refused export writes no PEFT files, so only the refusal is noted.
  const refused = join(dir, "refused");
  await saveAdapter(
    refused,
    { state: applied.state, peftExport: () => ({ ...applied.peftExport!(), refused: "some reason" }) },
    undefined,
    { scheme: "nf4" },
  );
  const notes = await Deno.readTextFile(join(refused, "README.md"));
  assert.match(notes, /No PEFT files: some reason/);
  assert.doesNotMatch(notes, /nf4/);
  applied.dispose();
  model.dispose();
});
