/**
 * LLaMA-Adapter against PEFT's `AdaptedAttention.forward` written out in plain loops: the top
 * layer's attention output moves by o_proj(g softmax(q K^T / sqrt(hd)) V) with K, V the prompt
 * through k_proj, v_proj and q the layer's RoPE'd queries (both RoPE conventions, grouped-query
 * heads); zero-init gating: exact identity and, at init, a gradient on the gates only.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { type LlamaConfig, validateConfig } from "../models/config.ts";
import type { LinearModule } from "../models/linear.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { adaptedLayerCount, llamaAdapter } from "./llama_adapter.ts";
import { assertStateRoundTrip, assertTrainsFrozenBase, trainableCount } from "./method_checks_test_utils.ts";
import { logitsOf, TINY_CONFIG, tinyBatch } from "./tiny_test_utils.ts";

await initBackend("cpu");

const apply = (model: LlamaModel, options: Record<string, unknown>) =>
  llamaAdapter.apply(model, parseMethodConfig(llamaAdapter, options), plainContext(new Rng(1)));

/** y = x W^T for row-major x [n, in], W [out, in]. */
function matT(x: Float32Array, n: number, w: Float32Array, out: number): Float64Array {
  const inF = w.length / out;
  const y = new Float64Array(n * out);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += x[i * inF + k] * w[o * inF + k];
      y[i * out + o] = s;
    }
  }
  return y;
}

/** RoPE of one head vector at position pos, pairs by convention (angle pos * theta^(-2i/hd)). */
function ropeHead(
  v: Float64Array,
  pos: number,
  theta: number,
  style: LlamaConfig["ropeStyle"],
): Float64Array {
  const hd = v.length;
  const out = new Float64Array(hd);
  for (let i = 0; i < hd / 2; i++) {
    const ang = pos * Math.pow(theta, (-2 * i) / hd);
    const [a, b] = style === "interleaved" ? [2 * i, 2 * i + 1] : [i, i + hd / 2];
    out[a] = v[a] * Math.cos(ang) - v[b] * Math.sin(ang);
    out[b] = v[b] * Math.cos(ang) + v[a] * Math.sin(ang);
  }
  return out;
}

for (const style of ["half", "interleaved"] as const) {
  Deno.test(`llama-adapter (${style} RoPE): the top layer's attention output moves by PEFT's gated prompt attention`, () => {
    const cfg = validateConfig({ ...TINY_CONFIG, ropeStyle: style });
    const { dim, nHeads, nKvHeads, headDim: hd } = cfg;
    const top = cfg.nLayers - 1;
    const make = () => LlamaModel.random(cfg, new Rng(3), 0.2);
    // Record the top layer's attention sublayer output and the attention input (q's input rows).
    const record = (model: LlamaModel) => {
      const seen: { x?: Float32Array; out?: Float32Array } = {};
      const q = model.linear(`layers.${top}.attn.q`);
      const spy: LinearModule = {
        name: q.name,
        inFeatures: q.inFeatures,
        outFeatures: q.outFeatures,
        bias: q.bias,
        base: q,
        denseWeight: () => q.denseWeight(),
        forward: (x) => {
          seen.x = x.dataSync() as Float32Array;
          return q.forward(x);
        },
      };
      model.linears.set(spy.name, spy);
      model.hooks.sublayerOutput = (layer, kind, out) => {
        if (layer === top && kind === "attn") seen.out = out.dataSync() as Float32Array;
        return out;
      };
      return seen;
    };
    const plain = make();
    const seenPlain = record(plain);
    logitsOf(plain, tinyBatch());
    const model = make();
    const applied = apply(model, { adapterLen: 3, adapterLayers: 1 });
    assert.equal(trainableCount(applied), 3 * dim + 1);
    const len = 3;
    const prompt = new Rng(8).normalArray(len * dim);
    const g = 0.7;
    applied.trainable[0].assign(tf.tensor2d(prompt, [len, dim]));
    applied.trainable[1].assign(tf.tensor1d([g]));
    const seen = record(model);
    logitsOf(model, tinyBatch());
    assert.deepEqual(seen.x, seenPlain.x, "the lower layer is untouched");

    const w = (n: string) => model.param(`layers.${top}.attn.${n}.weight`).dataSync() as Float32Array;
    const [b, t] = [2, 8];
    const n = b * t;
    const q = matT(seen.x!, n, w("q"), nHeads * hd);
    const k = matT(prompt, len, w("k"), nKvHeads * hd);
    const v = matT(prompt, len, w("v"), nKvHeads * hd);
    const a = new Float32Array(n * nHeads * hd);
    for (let r = 0; r < n; r++) {
      for (let h = 0; h < nHeads; h++) {
        const kv = Math.floor(h / (nHeads / nKvHeads)); // PEFT's repeat_interleave
        const qh = ropeHead(
          q.slice((r * nHeads + h) * hd, (r * nHeads + h + 1) * hd),
          r % t,
          cfg.ropeTheta,
          style,
        );
        const s = Array.from({ length: len }, (_, j) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qh[i] * k[(j * nKvHeads + kv) * hd + i];
          return dot / Math.sqrt(hd);
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((u, x) => u + x, 0);
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let j = 0; j < len; j++) acc += (e[j] / z) * v[(j * nKvHeads + kv) * hd + i];
          a[(r * nHeads + h) * hd + i] = g * acc;
        }
      }
    }
    const delta = matT(a, n, w("o"), dim);
    let err = 0;
    let size = 0;
    for (let i = 0; i < n * dim; i++) {
      err = Math.max(err, Math.abs(seen.out![i] - seenPlain.out![i] - delta[i]));
      size = Math.max(size, Math.abs(delta[i]));
    }
    assert.ok(size > 1e-2, `adapter term too small to test (${size})`);
    assert.ok(err < 1e-5, `attention output differs from PEFT's formula by ${err}`);
    applied.dispose();
    plain.dispose();
    model.dispose();
  });
}

Deno.test("llama-adapter: zero-init gate: exact identity, and at init only the gates get a gradient", () => {
  const plain = LlamaModel.random(TINY_CONFIG, new Rng(3), 0.2);
  const model = LlamaModel.random(TINY_CONFIG, new Rng(3), 0.2);
  const applied = apply(model, {});
  assert.deepEqual(logitsOf(model, tinyBatch()), logitsOf(plain, tinyBatch()));
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss, applied.trainable);
  applied.trainable.forEach((v, i) => {
    const gmax = Math.max(...(grads[v.name].dataSync() as Float32Array).map(Math.abs));
    if (v.size === 1) assert.ok(gmax > 1e-6, `gate ${i} has no gradient`);
    else assert.equal(gmax, 0, `prompt ${i} has a gradient through a zero gate`);
  });
  assertTrainsFrozenBase(model, applied);
  applied.dispose();
  assert.equal(model.hooks.attentionContext, undefined);
  plain.dispose();
  model.dispose();
});

Deno.test("llama-adapter: top layers only; default min(30, nLayers); too many layers is an error", () => {
  const model = LlamaModel.random(TINY_CONFIG, new Rng(3), 0.2);
  const one = apply(model, { adapterLayers: 1 });
  assert.deepEqual([...one.state().keys()], ["layers.1.adaption_prompt", "layers.1.adaption_gate"]);
  assert.deepEqual(one.state().get("layers.1.adaption_prompt")!.shape, [10, TINY_CONFIG.dim]);
  one.dispose();
  const deep = validateConfig({ ...TINY_CONFIG, nLayers: 32 });
  assert.equal(adaptedLayerCount(deep, parseMethodConfig(llamaAdapter, {})), 30);
  assert.equal(adaptedLayerCount(TINY_CONFIG, parseMethodConfig(llamaAdapter, {})), 2);
  assert.equal(
    llamaAdapter.contract!.parameterCount(deep, parseMethodConfig(llamaAdapter, {})),
    30 * (10 * 16 + 1),
  );
  assert.throws(
    () => apply(model, { adapterLayers: 3 }),
    /--opt adapterLayers=3 exceeds the model's 2 layers/,
  );
  assert.equal(model.hooks.attentionContext, undefined);
  model.dispose();
});

Deno.test("llama-adapter: state round trip", () => assertStateRoundTrip(llamaAdapter, { adapterLen: 2 }));

Deno.test("llama-adapter: PEFT export (ADAPTION_PROMPT tensors per adapted layer); refused on Qwen", () => {
  const model = LlamaModel.random(TINY_CONFIG, new Rng(3), 0.2);
  const applied = apply(model, { adapterLen: 4, adapterLayers: 1 });
  const e = applied.peftExport!();
  assert.equal(e.refused, undefined);
  assert.deepEqual(
    [e.config.peft_type, e.config.target_modules, e.config.adapter_len, e.config.adapter_layers],
    ["ADAPTION_PROMPT", "self_attn", 4, 1],
  );
  const p = e.tensors.get("base_model.model.model.layers.1.self_attn.adaption_prompt")!;
  assert.deepEqual(p.shape, [1, 4, TINY_CONFIG.dim]);
  assert.deepEqual(p.data, applied.trainable[0].dataSync());
  assert.deepEqual(e.tensors.get("base_model.model.model.layers.1.self_attn.adaption_gate")!.shape, [1]);
  assert.equal(e.tensors.size, 2);
  applied.dispose();
  model.dispose();
  const qwen = LlamaModel.random(
    validateConfig({ ...TINY_CONFIG, architecture: "Qwen2ForCausalLM" }),
    new Rng(3),
  );
  const q = apply(qwen, {});
  assert.match(q.peftExport!().refused!, /llama and mistral models only, not Qwen2ForCausalLM/);
  q.dispose();
  qwen.dispose();
});

Deno.test("llama-adapter: gradients are the same with activation checkpointing (--grad-checkpoint)", () => {
  const grads = (checkpoint: boolean) => {
    const model = LlamaModel.random(TINY_CONFIG, new Rng(3), 0.2);
    model.gradCheckpoint = checkpoint;
    const applied = apply(model, { adapterLen: 2 });
    applied.trainable.forEach((v, i) => v.assign(tf.add(v, 0.3 + 0.1 * i)));
    const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss, applied.trainable);
    const out = applied.trainable.map((v) => grads[v.name].dataSync() as Float32Array);
    applied.dispose();
    model.dispose();
    return out;
  };
  const [a, b] = [grads(false), grads(true)];
  a.forEach((g, i) => assert.deepEqual(b[i], g, `variable ${i}`));
  assert.ok(a.every((g) => g.some((x) => x !== 0)));
});
