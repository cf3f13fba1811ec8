/**
 * The method contract over every registered method: each `METHODS` entry, on two tiny seeded
 * models (plain Llama; one with q/k/v biases, q/k norms and an untied head), must declare its
 * `contract` facts and keep them: identity at init where declared (and a changed function where
 * not), the trainable-parameter count equal to its closed form, a PEFT export with PEFT's tensor
 * names and the declared shapes (a LoRA-layout export reproducing the update as
 * lora_alpha / r * B A), frozen variables untouched by training, the state round trip, and for
 * mergeable methods a merged plain model computing the adapted one's logits, kept by dispose. Deliberately broken
 * methods at the end show that each check can fail.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { type LlamaConfig, validateConfig } from "../models/config.ts";
import { Linear } from "../models/linear.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { lora } from "./lora.ts";
import { METHODS, parseMethodConfig } from "./registry.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, trainSteps } from "./tiny_test_utils.ts";
import type { AppliedMethod, MethodDefinition } from "./types.ts";

await initBackend("cpu");

/** A Qwen-style tiny config: q/k/v biases, q/k RMSNorm, untied output head. */
const BIASED_CONFIG = validateConfig({
  ...TINY_CONFIG,
  architecture: "Qwen3ForCausalLM",
  qkvBias: true,
  qkNorm: true,
  tiedEmbeddings: false,
});

/** A seeded model; biases and norm gains get random values so methods that touch them are seen. */
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

/**
 * PEFT's module name for one of our layers, written out here from PEFT's layout for a
 * `LlamaForCausalLM` wrapped by `get_peft_model` (not taken from the code under test).
 */
function peftName(key: string): string {
  const m = /^layers\.(\d+)\.(attn|mlp)\.(q|k|v|o|gate|up|down)\.(.+)$/.exec(key);
  if (key === "prompt_embeddings") return key; // prompt learning (p-tuning): PEFT saves it bare
  if (!m) return `base_model.${key}`; // shared tensors (VeRA's projections)
  return `base_model.model.model.layers.${m[1]}.${m[2] === "attn" ? "self_attn" : "mlp"}.${m[3]}_proj.${
    m[4]
  }`;
}

// deno-lint-ignore no-explicit-any
type AnyMethod = MethodDefinition<any>;

/** Every variable tfjs holds, except `skip`, with a copy of its values. */
function snapshotVariables(skip: Set<tf.Variable>): [string, tf.Variable, Float32Array][] {
  const all = Object.values(tf.engine().state.registeredVariables) as tf.Variable[];
  return all.filter((v) => !skip.has(v) && !v.isDisposed).map((v) => [
    v.name,
    v,
    (v.dataSync() as Float32Array).slice(),
  ]);
}

/** Check one method against its declared contract on a model with config `cfg`. */
function checkMethodContract(method: AnyMethod, cfg: LlamaConfig): void {
  const name = method.name;
  const contract = method.contract;
  assert.ok(contract, `${name} declares no contract (MethodDefinition.contract)`);
  const options = parseMethodConfig(method, contract.testOptions);
  const ids = tinyBatch();
  const plain = logitsOf(modelFor(cfg), ids);
  const make = (seed: number): { model: LlamaModel; applied: AppliedMethod } => {
    const model = modelFor(cfg);
    return { model, applied: method.apply(model, options, plainContext(new Rng(seed))) };
  };
  const { model, applied } = make(1);

  // Trainable parameters: distinct variables, as many values as the closed form says.
  assert.equal(new Set(applied.trainable).size, applied.trainable.length, `${name}: a variable listed twice`);
  const count = applied.trainable.reduce((s, v) => s + v.size, 0);
  assert.equal(count, contract.parameterCount(cfg, options), `${name}: trainable count vs closed form`);

  // Identity at init, or a changed function where the method declares none.
  const d0 = maxAbsDiff(plain, logitsOf(model, ids));
  if (contract.identityAtInit) {
    const tol = contract.identityTolerance ?? 1e-6;
    assert.ok(d0 < tol, `${name} changed the function at init by ${d0} (tolerance ${tol})`);
  } else {
    assert.ok(d0 > 1e-6, `${name} declares identityAtInit false but leaves the function unchanged`);
  }

  // PEFT export: exactly the declared tensors under PEFT's names and shapes.
  assert.equal(
    Boolean(applied.peftExport),
    Boolean(contract.peftTensors),
    `${name}: peftExport and contract.peftTensors must come together`,
  );
  if (applied.peftExport && contract.peftTensors) {
    const want = new Map([...contract.peftTensors(cfg, options)].map(([k, s]) => [peftName(k), s]));
    const got = applied.peftExport().tensors;
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${name}: PEFT tensor names`);
    for (const [k, t] of got) {
      assert.deepEqual(t.shape, want.get(k), `${name}: shape of ${k}`);
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), `${name}: size of ${k}`);
    }
  }

  // Training moves only the method's own variables; everything else keeps its value.
  const frozen = snapshotVariables(new Set(applied.trainable));
  if (count > 0) {
    const losses = trainSteps(model, applied, 5);
    assert.ok(losses.every(Number.isFinite), `${name}: non-finite loss ${losses}`);
    assert.ok(losses[4] < losses[0], `${name}: loss did not fall: ${losses}`);
  }
  for (const [vname, v, data] of frozen) {
    if (!v.isDisposed) assert.deepEqual(v.dataSync(), data, `${name}: frozen variable '${vname}' changed`);
  }
  const adapted = logitsOf(model, ids);
  if (count > 0) assert.ok(maxAbsDiff(plain, adapted) > 1e-4, `${name}: training changed nothing`);

  // A LoRA-layout export is PEFT's W + lora_alpha / r * B A (alpha / sqrt(r) with use_rslora).
  const peft = applied.peftExport?.();
  if (peft && peft.config.peft_type === "LORA" && !peft.config.use_dora) {
    const r = peft.config.r as number;
    const s = (peft.config.lora_alpha as number) / (peft.config.use_rslora ? Math.sqrt(r) : r);
    const deltas = applied.deltaWeights!();
    assert.ok(deltas.size > 0, `${name}: no deltaWeights to compare the export with`);
    for (const [layer, delta] of deltas) {
      const a = peft.tensors.get(peftName(`${layer}.lora_A.weight`))!;
      const b = peft.tensors.get(peftName(`${layer}.lora_B.weight`))!;
      const ba = tf.tidy(() =>
        tf.mul(
          tf.matMul(
            tf.tensor2d(b.data, b.shape as [number, number]),
            tf.tensor2d(a.data, a.shape as [number, number]),
          ),
          s,
        )
          .dataSync()
      );
      const d = maxAbsDiff(ba, delta.dataSync());
      assert.ok(d < 1e-5, `${name}: PEFT export of ${layer} differs from the update by ${d}`);
      delta.dispose();
    }
  }

  // State round trip: the trained state loaded into an application with another seed.
  const other = make(99);
  other.applied.loadState(applied.state());
  const dState = maxAbsDiff(adapted, logitsOf(other.model, ids));
  assert.ok(dState < 1e-6, `${name}: state round trip differs by ${dState}`);
  other.applied.dispose();

  // Merge: a plain model (fp32 linears, no hooks) computing the adapted model's logits.
  if (method.mergeable) {
    assert.ok(applied.merge, `${name} is mergeable but has no merge()`);
    applied.merge();
    for (const [lname, layer] of model.linears) {
      assert.ok(layer instanceof Linear, `${name}: '${lname}' is not a plain linear after merge`);
    }
    assert.deepEqual(Object.keys(model.hooks).filter((k) => model.hooks[k as keyof typeof model.hooks]), []);
    const tol = contract.mergeTolerance ?? 1e-5;
    const dMerge = maxAbsDiff(adapted, logitsOf(model, ids));
    assert.ok(dMerge < tol, `${name}: merged forward differs by ${dMerge} (tolerance ${tol})`);
    // dispose frees the method but keeps the merged layers.
    const merged = logitsOf(model, ids);
    applied.dispose();
    const dDispose = maxAbsDiff(merged, logitsOf(model, ids));
    assert.ok(dDispose === 0, `${name}: dispose after merge changed the model by ${dDispose}`);
  } else {
    applied.dispose();
  }
  ids.dispose();
}

for (const [name, method] of METHODS) {
  Deno.test(`contract: ${name} (llama)`, () => checkMethodContract(method, TINY_CONFIG));
  Deno.test(`contract: ${name} (q/k/v bias, q/k norm, untied head)`, () =>
    checkMethodContract(method, BIASED_CONFIG));
}

// The checks above can fail: each broken variant of LoRA below breaks one part of the contract.

/** LoRA with `patch` applied to its application. */
function brokenLora(
  name: string,
  patch: (model: LlamaModel, applied: AppliedMethod) => Partial<AppliedMethod>,
  contract: AnyMethod["contract"] = lora.contract,
): AnyMethod {
  return {
    ...lora,
    name,
    contract,
    apply: (model, config, ctx) => {
      const applied = lora.apply(model, config, ctx);
      return { ...applied, ...patch(model, applied) };
    },
  };
}

Deno.test("contract fails: a merge that folds twice the update", () => {
  const broken = brokenLora("broken-merge", (model, applied) => ({
    merge: () => {
      const ctx = plainContext(new Rng(0));
      for (const [name, delta] of applied.deltaWeights!()) {
        const base = model.param(`${name}.weight`);
        const w = tf.tidy(() => tf.add(base, tf.mul(delta, 2)) as tf.Tensor2D);
        model.linears.set(name, ctx.makeFrozenLinear(name, w, null));
        tf.dispose([w, delta]);
      }
    },
  }));
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /merged forward differs/);
});

Deno.test("contract fails: no declared contract", () => {
  const broken: AnyMethod = { ...brokenLora("no-contract", () => ({})), contract: undefined };
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /declares no contract/);
});

Deno.test("contract fails: a closed form that disagrees with the trainable count", () => {
  const broken = brokenLora("wrong-count", () => ({}), {
    ...lora.contract!,
    parameterCount: (m, c) => lora.contract!.parameterCount(m, c) + 1,
  });
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /trainable count vs closed form/);
});

Deno.test("contract fails: a step hook that writes a frozen base weight", () => {
  const broken = brokenLora("touches-base", (model) => ({
    afterStep: () => {
      const w = model.param("layers.0.attn.q.weight");
      tf.tidy(() => w.assign(tf.mul(w, 1.001)));
    },
  }));
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /frozen variable .* changed/);
});

Deno.test("contract fails: loadState that loads nothing", () => {
  const broken = brokenLora("no-load", () => ({ loadState: () => {} }));
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /state round trip differs/);
});

Deno.test("contract fails: an update that is not zero at init", () => {
  const broken = brokenLora("not-identity", (_model, applied) => {
    for (const v of applied.trainable) tf.tidy(() => v.assign(tf.add(v, 0.05)));
    return {};
  });
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /changed the function at init/);
});

Deno.test("contract fails: a PEFT export with a wrong shape", () => {
  const broken = brokenLora("bad-export", (_model, applied) => ({
    peftExport: () => {
      const e = applied.peftExport!();
      const [k, t] = [...e.tensors][0];
      e.tensors.set(k, { data: t.data, shape: [...t.shape].reverse() });
      return e;
    },
  }));
  assert.throws(() => checkMethodContract(broken, TINY_CONFIG), /shape of base_model/);
});
