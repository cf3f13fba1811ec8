/**
 * PEFT exports proven by an independent reader (`peft_reader_test_utils.ts`, PEFT's formulas, no
 * method code): for every registered method with a PEFT export, on tiny seeded models after a few
 * training steps, the base written as a Hugging Face checkpoint (`writeHfFolder`) plus the exported
 * adapter, applied as PEFT applies it, gives the run's adapted logits. Bases: plain Llama with
 * rotate-half RoPE, a llama2.c-style Llama with interleaved RoPE (its checkpoint permutes q/k rows,
 * so must the export), Qwen2 (q/k/v biases, untied head) and Qwen3 (q/k norms). Prompt-side exports
 * (LLaMA-Adapter, P-tuning) run through the reader's own forward, itself checked against the base. Also:
 * `re:` targets limited to some layers, LoftQ's refusal, and a classification head exported as
 * PEFT's SEQ_CLS `score`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { type LlamaConfig, validateConfig } from "../models/config.ts";
import { fromHfName, inspectHfFolder, writeHfFolder } from "../models/hf.ts";
import { LlamaModel } from "../models/llama.ts";
import { readSafetensorsFile } from "../models/safetensors.ts";
import { Rng } from "../models/util/rng.ts";
import { saveAdapter, type SequenceHead } from "../bench/save_adapter.ts";
import { plainContext } from "./common.ts";
import { lora } from "./lora.ts";
import { type QuantConfig, validateQuantConfig } from "./quant/config.ts";
import { QuantizedLinear } from "./quant/linear.ts";
import { peftTargetFields } from "./peft_export.ts";
import { METHODS, parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, trainSteps } from "./tiny_test_utils.ts";
import type { AppliedMethod, MethodContext, MethodDefinition, NamedArray } from "./types.ts";
import {
  applyPeftExport,
  type PeftApplied,
  peftLogits,
  peftTargets,
  readPeftFolder,
} from "./peft_reader_test_utils.ts";

await initBackend("cpu");

const root = await Deno.makeTempDir({ prefix: "peft-export-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const BASES: [string, LlamaConfig][] = [
  ["llama, rotate-half RoPE", TINY_CONFIG],
  ["llama2.c, interleaved RoPE", validateConfig({ ...TINY_CONFIG, ropeStyle: "interleaved" })],
  [
    "qwen2: q/k/v bias, untied head",
    validateConfig({
      ...TINY_CONFIG,
      architecture: "Qwen2ForCausalLM",
      qkvBias: true,
      tiedEmbeddings: false,
    }),
  ],
  ["qwen3: q/k norm", validateConfig({ ...TINY_CONFIG, architecture: "Qwen3ForCausalLM", qkNorm: true })],
];

const STEPS = 5;

/** A seeded model; biases and norm gains random so that their HF layout matters. */
function modelFor(cfg: LlamaConfig): LlamaModel {
  const model = LlamaModel.random(cfg, new Rng(1), 0.2);
  const rng = new Rng(7);
  for (const [name, v] of model.params) {
    if (name.endsWith(".bias")) v.assign(tf.tensor(rng.fork(name).normalArray(v.size, 0.1), v.shape));
    if (name.endsWith("norm.weight")) {
      v.assign(tf.tensor(rng.fork(name).uniformArray(v.size, 0.8, 1.2), v.shape));
    }
  }
  return model;
}

// deno-lint-ignore no-explicit-any
type AnyMethod = MethodDefinition<any>;

/** A trained application: the model, its pristine weights, the method and the adapted logits. */
interface Trained {
  cfg: LlamaConfig;
  model: LlamaModel;
  base: Map<string, Float32Array>;
  applied: AppliedMethod;
}

function train(
  method: AnyMethod,
  options: Record<string, unknown>,
  cfg: LlamaConfig,
  ctx?: MethodContext,
  quant?: QuantConfig,
): Trained {
  const model = modelFor(cfg);
  const base = new Map([...model.params].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
  if (quant) {
    // A quantized frozen base, as a run's: every decoder linear stored in the scheme; the base PEFT
    // must see is then the dequantized weights.
    const resolved = validateQuantConfig(quant);
    for (const [name, layer] of [...model.linears]) {
      if (!name.startsWith("layers.")) continue;
      const q = QuantizedLinear.fromDense(name, layer.denseWeight(), resolved, layer.bias);
      model.linears.set(name, q);
      const w = q.weight.dequantize();
      base.set(`${name}.weight`, (w.dataSync() as Float32Array).slice());
      w.dispose();
    }
  }
  const applied = method.apply(
    model,
    parseMethodConfig(method, options),
    ctx ?? plainContext(new Rng(3), STEPS + 1),
  );
  trainSteps(model, applied, STEPS);
  return { cfg, model, base, applied };
}

/** The base as a Hugging Face checkpoint folder: config and state dict under HF names. */
async function hfBase(cfg: LlamaConfig, weights: Map<string, Float32Array>) {
  const dir = await Deno.makeTempDir({ dir: root });
  await writeHfFolder(dir, cfg, weights);
  const { config } = await inspectHfFolder(dir);
  const hf = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  const { tensors } = await readSafetensorsFile(join(dir, "model.safetensors"));
  const state = new Map<string, NamedArray>();
  for (const [k, t] of tensors) state.set(k, { data: t.data as Float32Array, shape: t.shape });
  return { config, hf, state };
}

/** Save the adapter, read it back with the independent reader and build PEFT's model. */
async function peftModel(
  t: Trained,
  head?: SequenceHead,
): Promise<{ model: LlamaModel; peft: PeftApplied; dir: string; hf: Record<string, unknown> }> {
  const dir = await Deno.makeTempDir({ dir: root });
  await saveAdapter(dir, t.applied, head);
  const { config, hf, state } = await hfBase(t.cfg, t.base);
  const peft = applyPeftExport(state, await readPeftFolder(dir));
  const ours = new Map<string, Float32Array>();
  for (const [k, v] of peft.weights) {
    const n = fromHfName(k);
    if (n !== null) ours.set(n, v.data);
  }
  return { model: LlamaModel.fromWeights(config, ours), peft, dir, hf };
}

/** The run's logits vs PEFT's on the tiny batch (tolerance for float32 and AdaLoRA's 1e-5). */
async function assertReproduces(t: Trained, label: string): Promise<PeftApplied> {
  const ids = tinyBatch();
  const frozen = modelFor(t.cfg);
  const before = logitsOf(frozen, ids);
  const run = logitsOf(t.model, ids);
  assert.ok(maxAbsDiff(before, run) > 1e-3, `${label}: training changed nothing`);
  const { model, peft, hf } = await peftModel(t);
  // Prompt-side exports change the forward, not a weight: the reader runs PEFT's forward itself.
  const viaPeft = peft.prompt || peft.adaptionPrompts
    ? peftLogits(hf, peft, ids.arraySync())
    : logitsOf(model, ids);
  const d = maxAbsDiff(run, viaPeft);
  assert.ok(d < 1e-4, `${label}: PEFT's logits differ from the run's by ${d}`);
  tf.dispose(ids);
  model.dispose();
  frozen.dispose();
  return peft;
}

/** Options per method for the export test: the contract's, with a schedule short enough to prune. */
function exportOptions(name: string, method: AnyMethod): Record<string, unknown> {
  const base = method.contract!.testOptions;
  if (name === "adalora") return { ...base, tinit: 1, tfinal: 1 };
  return base;
}

/**
 * Exports that exist only off q/k on interleaved-RoPE bases: the checkpoint permutes q/k output
 * rows per head, which breaks RoAd's output pairs (k, k + g/2), MiSS mini's repeated pattern and
 * bat's row blocks, VB-LoRA's B sub-vectors drawn from the shared bank, and C3A's circulant
 * blocks. Those runs must refuse, naming q/k; the same method without q/k must export.
 */
function refusesQkOnInterleaved(name: string, options: Record<string, unknown>): boolean {
  return name === "road" || name === "vblora" || name === "c3a" || name === "randlora" ||
    (name === "miss" && (options.init ?? "miss") !== "miss");
}

/**
 * Methods PEFT supports only on some architectures: the Hugging Face `model_type`s it accepts
 * (`adaption_prompt/config.py TRANSFORMERS_MODEL_CONFIG`: llama, mistral, gpt2; `prepare_config`
 * raises for any other). Elsewhere the export must be refused and the reader must refuse it too.
 */
const PEFT_MODEL_TYPES: Record<string, string[]> = { "llama-adapter": ["llama", "mistral"] };

/** Train, export and compare on every base (the refusal path where the export cannot exist). */
async function proveOnEveryBase(name: string, method: AnyMethod, options: Record<string, unknown>) {
  for (const [label, cfg] of BASES) {
    const interleaved = cfg.ropeStyle === "interleaved";
    const modelType = cfg.architecture.replace(/ForCausalLM$/, "").toLowerCase();
    if (PEFT_MODEL_TYPES[name] && !PEFT_MODEL_TYPES[name].includes(modelType)) {
      const t = train(method, options, cfg);
      const exported = t.applied.peftExport!();
      assert.match(exported.refused ?? "", /llama and mistral/, `${name}: ${label} must be refused`);
      // The same files on this base: PEFT (the reader) rejects the model type.
      const { hf, state } = await hfBase(cfg, t.base);
      assert.equal(hf.model_type, modelType);
      const peft = applyPeftExport(state, { config: exported.config, tensors: exported.tensors });
      assert.throws(() => peftLogits(hf, peft, [[1, 2, 3]]), /Unsupported model type for adaption prompt/);
      t.applied.dispose();
      t.model.dispose();
      continue;
    }
    let opts = options;
    if (interleaved && refusesQkOnInterleaved(name, options)) {
      const t = train(method, options, cfg);
      assert.match(
        t.applied.peftExport!().refused ?? "",
        /--targets without q,k/,
        `${name}: q/k on ${label} must be refused`,
      );
      t.applied.dispose();
      t.model.dispose();
      opts = { ...options, targets: "v,o,gate,up,down" };
    }
    // VeRA's q+v cannot be exported on an interleaved base (tested below); q and k can.
    if (interleaved && name === "vera") opts = { ...options, targets: "q,k" };
    const t = train(method, opts, cfg);
    const exported = t.applied.peftExport!();
    assert.equal(exported.refused, undefined, `${name} (${label}): export refused: ${exported.refused}`);
    const peft = await assertReproduces(t, `${name} ${JSON.stringify(opts)} (${label})`);
    assert.ok(peft.wrapped.length > 0 || peft.prompt, `${name}: PEFT applies nothing`);
    if (name === "adalora") {
      assert.ok(exported.config.rank_pattern, "adalora: the pruned export carries rank_pattern");
    }
    t.applied.dispose();
    t.model.dispose();
  }
}

for (const [name, method] of METHODS) {
  if (!method.contract?.peftTensors) continue; // the contract test pairs peftTensors with peftExport
  Deno.test(`PEFT export reproduces the run: ${name} (every base)`, async () => {
    await proveOnEveryBase(name, method, exportOptions(name, method));
  });
}

/**
 * The forms each method's contract options do not reach: BOFT's block count form and one or three
 * butterfly factors, RoAd's road_2 and road_4, MiSS's mini and bat, DeLoRA at another rank and lambda,
 * LLaMA-Adapter in the top layer only, C3A at another block size.
 */
const VARIANTS: [string, Record<string, unknown>][] = [
  ["boft", { targets: "all-linear", blockSize: 0, blockNum: 4, nButterflyFactor: 2 }],
  ["boft", { targets: "all-linear", blockSize: 4, nButterflyFactor: 1 }],
  ["boft", { targets: "all-linear", blockSize: 2, nButterflyFactor: 3 }],
  ["road", { targets: "all-linear", variant: "road_2", groupSize: 4 }],
  ["road", { targets: "all-linear", variant: "road_4", groupSize: 8 }],
  ["miss", { targets: "all-linear", rank: 4, init: "mini", miniR: 4 }],
  ["miss", { targets: "all-linear", rank: 4, init: "bat" }],
  ["miss", { targets: "all-linear", rank: 5 }],
  ["delora", { targets: "all-linear", rank: 3, deloraLambda: 4 }],
  ["llama-adapter", { adapterLen: 2, adapterLayers: 1 }],
  ["c3a", { targets: "all-linear", blockSize: 4, init: "kaiming_uniform" }],
];

for (const [name, options] of VARIANTS) {
  Deno.test(`PEFT export reproduces the run: ${name} ${JSON.stringify(options)} (every base)`, async () => {
    await proveOnEveryBase(name, METHODS.get(name)!, options);
  });
}

Deno.test("PEFT export: VeRA with q and v on an interleaved-RoPE base is refused, with the reason", async () => {
  const cfg = BASES[1][1];
  const t = train(METHODS.get("vera")!, { rank: 4, targets: "q+v" }, cfg);
  const e = t.applied.peftExport!();
  assert.match(e.refused ?? "", /vera_B/);
  const dir = await Deno.makeTempDir({ dir: root });
  await saveAdapter(dir, t.applied);
  assert.deepEqual([...Deno.readDirSync(dir)].map((f) => f.name).sort(), [
    "README.md",
    "adapter.safetensors",
  ]);
  t.applied.dispose();
  t.model.dispose();
});

Deno.test("PEFT export: re: targets in some layers wrap exactly those layers in PEFT", async () => {
  for (
    const [spec, want] of [
      [String.raw`re:layers\.1\.attn\.(q|v)$`, {
        target_modules: ["q_proj", "v_proj"],
        layers_to_transform: [1],
        layers_pattern: "layers",
      }],
      [String.raw`re:layers\.0\.attn\.q$|layers\.1\.mlp\.down$`, {
        target_modules: ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"],
      }],
    ] as const
  ) {
    const t = train(lora, { rank: 2, alpha: 4, targets: spec }, BASES[1][1]);
    const e = t.applied.peftExport!();
    for (const [k, v] of Object.entries(want)) assert.deepEqual(e.config[k], v, `${spec}: ${k}`);
    const peft = await assertReproduces(t, spec);
    assert.equal(peft.wrapped.length, 2, `${spec}: PEFT wraps ${peft.wrapped}`);
    t.applied.dispose();
    t.model.dispose();
  }
});

Deno.test("PEFT export: RoAd limited to some layers names its modules in full (RoadConfig has no layers_to_transform)", async () => {
  // PEFT's RoadConfig lacks layers_to_transform/layers_pattern: from_peft_type drops them with a
  // warning and every layer's q/v would be wrapped, so the export must list full module names.
  const t = train(
    METHODS.get("road")!,
    { groupSize: 4, targets: String.raw`re:layers\.1\.attn\.(q|v)$` },
    TINY_CONFIG,
  );
  const peft = await assertReproduces(t, "road in layer 1");
  const e = t.applied.peftExport!();
  assert.deepEqual(e.config.target_modules, [
    "model.layers.1.self_attn.q_proj",
    "model.layers.1.self_attn.v_proj",
  ]);
  assert.equal(e.config.layers_to_transform, undefined);
  assert.deepEqual(peft.wrapped, ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]);
  t.applied.dispose();
  t.model.dispose();
});

Deno.test("PEFT export: every exporting method limited to layer 1's q and v wraps exactly those modules in PEFT", async () => {
  // Whatever fields the export uses (layers_to_transform or full names), PEFT's config class must
  // keep them (the reader drops keys the class lacks, as PEFT does).
  for (const [name, method] of METHODS) {
    if (!method.contract?.peftTensors) continue;
    // Methods without linear targets (trainable tokens) select no layers.
    if (!("targets" in parseMethodConfig(method, exportOptions(name, method)))) continue;
    const options = { ...exportOptions(name, method), targets: String.raw`re:layers\.1\.attn\.(q|v)$` };
    const t = train(method, options, TINY_CONFIG);
    const peft = await assertReproduces(t, `${name} in layer 1`);
    assert.deepEqual(
      peft.wrapped,
      ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"],
      `${name}: PEFT wraps ${peft.wrapped}`,
    );
    t.applied.dispose();
    t.model.dispose();
  }
});

Deno.test("PEFT reader's own forward (HF Llama/Qwen2/Qwen3 in float64) gives the base model's logits on every base", async () => {
  // The prompt-side exports are checked through this forward: it must be the base's function.
  const ids = tinyBatch();
  for (const [label, cfg] of BASES) {
    const model = modelFor(cfg);
    const weights = new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
    const { hf, state } = await hfBase(cfg, weights);
    const d = maxAbsDiff(
      logitsOf(model, ids),
      peftLogits(hf, { weights: state, wrapped: [] }, ids.arraySync()),
    );
    assert.ok(d < 1e-4, `${label}: the reader's forward differs from the model's by ${d}`);
    model.dispose();
  }
  ids.dispose();
});

Deno.test("PEFT target matching (reader): suffix lists, layers_to_transform, full names and regex strings", () => {
  const key = "model.layers.1.self_attn.q_proj";
  assert.equal(peftTargets({ target_modules: ["q_proj"] }, key), true);
  assert.equal(peftTargets({ target_modules: ["q_proj"], layers_to_transform: [0] }, key), false);
  assert.equal(
    peftTargets({ target_modules: ["q_proj"], layers_to_transform: [1], layers_pattern: "layers" }, key),
    true,
  );
  assert.equal(peftTargets({ target_modules: ["q_proj"], layers_to_transform: 1 }, key), true);
  assert.equal(peftTargets({ target_modules: [key] }, key), true);
  assert.equal(peftTargets({ target_modules: ["model.layers.0.self_attn.q_proj"] }, key), false);
  assert.equal(peftTargets({ target_modules: String.raw`.*\.1\..*q_proj` }, key), true);
  assert.equal(peftTargets({ target_modules: "q_proj" }, key), false); // regex matches the whole key
  // Every layer of the selected kinds: bare kinds, as before.
  assert.deepEqual(peftTargetFields(["layers.0.attn.q", "layers.1.attn.q"], 2), {
    target_modules: ["q_proj"],
  });
});

Deno.test("PEFT export: a LoftQ-initialised LoRA is refused (README reason, no PEFT files)", async () => {
  const cfg = TINY_CONFIG;
  const model = modelFor(cfg);
  const rng = new Rng(5);
  const q = "layers.0.attn.q";
  const factors = new Map([[q, { a: rng.normalArray(2 * 16, 0.1), b: rng.normalArray(16 * 2, 0.1) }]]);
  const ctx = { ...plainContext(new Rng(3)), initialFactors: factors };
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: 2, alpha: 4, targets: String.raw`re:layers\.0\.attn\.q$` }),
    ctx,
  );
  assert.match(applied.peftExport!().refused ?? "", /--loftq/);
  const dir = await Deno.makeTempDir({ dir: root });
  await saveAdapter(dir, applied);
  assert.deepEqual([...Deno.readDirSync(dir)].map((f) => f.name).sort(), [
    "README.md",
    "adapter.safetensors",
  ]);
  assert.match(await Deno.readTextFile(join(dir, "README.md")), /--loftq 0/);
  // Without factors the same LoRA exports.
  const plain = lora.apply(
    modelFor(cfg),
    parseMethodConfig(lora, { rank: 2, alpha: 4 }),
    plainContext(new Rng(3)),
  );
  assert.equal(plain.peftExport!().refused, undefined);
  applied.dispose();
  plain.dispose();
});

Deno.test("PEFT export: a classification head as SEQ_CLS score, with what PEFT cannot express named", async () => {
  const cfg = BASES[1][1];
  const t = train(lora, { rank: 2, alpha: 4, targets: "q+k+v" }, cfg);
  const rng = new Rng(11);
  const classes = 3;
  const head: SequenceHead = {
    weight: { data: rng.normalArray(classes * cfg.dim, 0.3), shape: [classes, cfg.dim] },
    bias: { data: rng.normalArray(classes, 0.3), shape: [classes] },
    pooling: "last",
  };
  // Logits of the last token's final hidden state (the tiny batch has no padding).
  const scores = (model: LlamaModel, w: NamedArray, b?: NamedArray) =>
    tf.tidy(() => {
      const ids = tinyBatch();
      const h = model.hidden(ids);
      const [n, len] = ids.shape;
      const last = tf.reshape(tf.slice(h, [0, len - 1, 0], [n, 1, cfg.dim]), [n, cfg.dim]);
      const z = tf.matMul(last, tf.tensor2d(w.data, w.shape as [number, number]), false, true);
      return (b ? tf.add(z, tf.tensor1d(b.data)) : z).dataSync() as Float32Array;
    });
  const run = scores(t.model, head.weight, head.bias);
  const { model, peft, dir } = await peftModel(t, head);
  const config = JSON.parse(await Deno.readTextFile(join(dir, "adapter_config.json")));
  assert.equal(config.task_type, "SEQ_CLS");
  assert.deepEqual(config.modules_to_save, ["score"]);
  assert.ok(peft.score);
  const viaPeft = scores(model, peft.score);
  // PEFT's score has no bias: its logits are the run's minus the bias, which the README names.
  const d = maxAbsDiff(run, viaPeft.map((x, i) => x + head.bias.data[i % classes]));
  assert.ok(d < 1e-4, `SEQ_CLS logits + bias differ from the run's by ${d}`);
  assert.ok(maxAbsDiff(run, viaPeft) > 1e-3);
  assert.match(await Deno.readTextFile(join(dir, "README.md")), /bias/);
  // Mean pooling cannot be reproduced: the README says so.
  const dir2 = await Deno.makeTempDir({ dir: root });
  await saveAdapter(dir2, t.applied, {
    ...head,
    pooling: "mean",
    bias: { data: new Float32Array(classes), shape: [classes] },
  });
  const notes = await Deno.readTextFile(join(dir2, "README.md"));
  assert.match(notes, /--pooling last/);
  assert.doesNotMatch(notes, /bias/);
  model.dispose();
  t.applied.dispose();
  t.model.dispose();
});

Deno.test("PEFT export of a run on an nf4 base: the same function on the base quantized the same way, another on the full-precision one (README says which)", async () => {
  const quant: QuantConfig = { scheme: "nf4", blockSize: 64, doubleQuant: true };
  // LoRA, and methods whose adapter reads W: DeLoRA's delora_w_norm, MiSS bat's W_ac B_a.
  for (
    const [name, options] of [
      ["lora", { rank: 2, alpha: 4, targets: "all-linear" }],
      ["delora", { rank: 2, targets: "all-linear" }],
      ["miss", { rank: 4, init: "bat", targets: "all-linear" }],
    ] as const
  ) {
    const t = train(METHODS.get(name)!, options, BASES[2][1], undefined, quant);
    await assertReproduces(t, `${name} on nf4`);
    // The full-precision base is another base: PEFT's logits there are not the run's.
    const dense = modelFor(t.cfg);
    const full = {
      ...t,
      base: new Map([...dense.params].map(([n, v]) => [n, v.dataSync() as Float32Array])),
    };
    const { model } = await peftModel(full);
    const ids = tinyBatch();
    assert.ok(
      maxAbsDiff(logitsOf(t.model, ids), logitsOf(model, ids)) > 1e-3,
      `${name}: nf4 made no difference`,
    );
    const dir = await Deno.makeTempDir({ dir: root });
    await saveAdapter(dir, t.applied, undefined, quant);
    assert.match(
      await Deno.readTextFile(join(dir, "README.md")),
      /quantized the same way \(scheme nf4, block size 64, double quantization on/,
    );
    tf.dispose(ids);
    model.dispose();
    dense.dispose();
    t.applied.dispose();
    t.model.dispose();
  }
});
