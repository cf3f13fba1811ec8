/**
 * P-tuning against PEFT's `PromptEncoder`: MLP, the prompt equals Linear-ReLU-Linear-ReLU-Linear of
 * the embedding written out in loops; LSTM, the cell against a hand computation and a closed form,
 * the whole encoder against torch's bidirectional nn.LSTM equations written out in float64 loops,
 * the parameter count against torch's nn.LSTM shapes; torch's default inits; only the encoder
 * trains; the exported `prompt_embeddings`, used as a plain soft prompt (PEFT's inference mode),
 * gives the same logits.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { type AppliedPTuning, lstmDirection, pTuning } from "./p_tuning.ts";
import { promptTuning } from "./prompt_tuning.ts";
import type { NamedArray } from "./types.ts";
import type { LlamaModel } from "../models/llama.ts";
import { applyTiny, assertStateRoundTrip, assertTrainsFrozenBase } from "./method_checks_test_utils.ts";
import { logitsOf, maxAbsDiff, TINY_CONFIG, tinyBatch, tinyModel } from "./tiny_test_utils.ts";

await initBackend("cpu");

/** y = W x + b for a row x, W [out, in]. */
function dense(x: ArrayLike<number>, w: Float32Array, b: Float32Array): number[] {
  const inF = x.length;
  return Array.from(b, (bo, o) => {
    let s = bo;
    for (let k = 0; k < inF; k++) s += w[o * inF + k] * x[k];
    return s;
  });
}

const relu = (v: number[]) => v.map((x) => Math.max(0, x));

/**
 * PEFT's inference mode: the exported rows (3 virtual tokens) loaded as a plain prompt on a fresh
 * tiny model give the trained model's logits; no encoder.
 */
function assertExportedPromptReproduces(model: LlamaModel, saved: NamedArray): void {
  const plain = tinyModel();
  const prompt = promptTuning.apply(
    plain,
    parseMethodConfig(promptTuning, { virtualTokens: 3 }),
    plainContext(new Rng(1)),
  );
  prompt.loadState(new Map([["prompt_embeddings", saved]]));
  const d = maxAbsDiff(logitsOf(model, tinyBatch()), logitsOf(plain, tinyBatch()));
  assert.ok(d < 1e-6, `the exported prompt gives other logits (${d})`);
  prompt.dispose();
  plain.dispose();
}

Deno.test("p-tuning: the prompt is PEFT's mlp_head (Linear, ReLU, Linear, ReLU, Linear) of the embedding", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 3, encoderHidden: 5 });
  const s = applied.state();
  const t = (k: string) => s.get(`prompt_encoder.${k}`)!.data;
  const d = TINY_CONFIG.dim;
  const want: number[] = [];
  for (let j = 0; j < 3; j++) {
    const e = t("embedding.weight").subarray(j * d, (j + 1) * d);
    const h1 = relu(dense(e, t("mlp_head.0.weight"), t("mlp_head.0.bias")));
    const h2 = relu(dense(h1, t("mlp_head.2.weight"), t("mlp_head.2.bias")));
    want.push(...dense(h2, t("mlp_head.4.weight"), t("mlp_head.4.bias")));
  }
  const p = (applied as AppliedPTuning).prompt();
  assert.deepEqual(p.shape, [3, d]);
  assert.ok(maxAbsDiff(p.dataSync(), want) < 1e-5, `prompt differs by ${maxAbsDiff(p.dataSync(), want)}`);
  assert.deepEqual(
    [...s].map(([k, a]) => [k, a.shape]),
    [
      ["prompt_encoder.embedding.weight", [3, d]],
      ["prompt_encoder.mlp_head.0.weight", [5, d]],
      ["prompt_encoder.mlp_head.0.bias", [5]],
      ["prompt_encoder.mlp_head.2.weight", [5, 5]],
      ["prompt_encoder.mlp_head.2.bias", [5]],
      ["prompt_encoder.mlp_head.4.weight", [d, 5]],
      ["prompt_encoder.mlp_head.4.bias", [d]],
    ],
  );
  p.dispose();
  applied.dispose();
  assert.equal(model.hooks.promptEmbeddings, undefined);
  model.dispose();
});

Deno.test("p-tuning: torch inits (embedding N(0, 1); Linear weight and bias U(+-1/sqrt(fan_in))); defaults 20 tokens, h = dim", () => {
  const cfg = validateConfig({ ...TINY_CONFIG, dim: 64, nHeads: 4, nKvHeads: 2 });
  const c = parseMethodConfig(pTuning, {});
  assert.equal(c.virtualTokens, 20);
  assert.equal(pTuning.contract!.parameterCount(cfg, c), 20 * 64 + (64 * 64 + 64) * 3);
  const { applied } = applyTiny(pTuning, {});
  const s = applied.state();
  const e = s.get("prompt_encoder.embedding.weight")!.data;
  assert.equal(e.length, 20 * TINY_CONFIG.dim);
  const mean = e.reduce((a, x) => a + x, 0) / e.length;
  const sd = Math.sqrt(e.reduce((a, x) => a + (x - mean) ** 2, 0) / e.length);
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(e.length) && sd > 0.9 && sd < 1.1, `mean ${mean} sd ${sd}`);
  for (const [k, fanIn] of [["0", 16], ["2", 16], ["4", 16]] as const) {
    for (const part of ["weight", "bias"]) {
      const a = s.get(`prompt_encoder.mlp_head.${k}.${part}`)!.data;
      const bound = 1 / Math.sqrt(fanIn);
      const max = Math.max(...a.map(Math.abs));
      // Inside the bound, and spread over it (the largest of >= 16 uniform draws is above bound/2).
      assert.ok(max <= bound && max > bound / 2, `${k}.${part}: max |x| ${max} vs bound ${bound}`);
    }
  }
  applied.dispose();
});

Deno.test("p-tuning: only the encoder gets gradients; training lowers the loss with a frozen backbone", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 4, encoderHidden: 8 });
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss);
  assert.deepEqual(Object.keys(grads).sort(), applied.trainable.map((v) => v.name).sort());
  assertTrainsFrozenBase(model, applied);
  applied.dispose();
  model.dispose();
});

Deno.test("p-tuning: state round trip", () =>
  assertStateRoundTrip(pTuning, { virtualTokens: 3, encoderHidden: 4 }));

Deno.test("p-tuning: PEFT export is the encoder output as prompt_embeddings; as a plain soft prompt it gives the same logits", () => {
  const { model, applied } = applyTiny(pTuning, { virtualTokens: 3, encoderHidden: 6 });
  const e = applied.peftExport!();
  assert.equal(e.config.peft_type, "P_TUNING");
  assert.equal(e.config.encoder_reparameterization_type, "MLP");
  assert.deepEqual([e.config.num_virtual_tokens, e.config.token_dim, e.config.encoder_hidden_size], [
    3,
    16,
    6,
  ]);
  assert.deepEqual([...e.tensors.keys()], ["prompt_embeddings"]);
  const saved = e.tensors.get("prompt_embeddings")!;
  assert.deepEqual(saved.shape, [3, TINY_CONFIG.dim]);
  assertExportedPromptReproduces(model, saved);
  applied.dispose();
  model.dispose();
});

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** One step of torch's LSTM cell in float64: gate rows i, f, g, o of W_ih x + b_ih + W_hh h + b_hh. */
function lstmStep(
  x: ArrayLike<number>,
  hPrev: number[],
  cPrev: number[],
  w: { ih: Float32Array; hh: Float32Array; bih: Float32Array; bhh: Float32Array },
): [number[], number[]] {
  const h = hPrev.length;
  const gates = Array.from({ length: 4 * h }, (_, r) => {
    let s = w.bih[r] + w.bhh[r];
    for (let k = 0; k < x.length; k++) s += w.ih[r * x.length + k] * x[k];
    for (let k = 0; k < h; k++) s += w.hh[r * h + k] * hPrev[k];
    return s;
  });
  const c = cPrev.map((cp, j) =>
    sigmoid(gates[h + j]) * cp + sigmoid(gates[j]) * Math.tanh(gates[2 * h + j])
  );
  return [c.map((cj, j) => sigmoid(gates[3 * h + j]) * Math.tanh(cj)), c];
}

Deno.test("p-tuning LSTM: the cell matches a hand computation and the constant-gate closed form", () =>
  tf.tidy(() => {
    // in = h = 1, two steps, zero biases: x = (0.5, -1), W_ih = (0.1, 0.2, 0.3, 0.4), W_hh = (0.5, -0.5, 1, 0.2).
    const wIh = tf.tensor2d([0.1, 0.2, 0.3, 0.4], [4, 1]);
    const wHh = tf.tensor2d([0.5, -0.5, 1, 0.2], [4, 1]);
    const zero = tf.zeros([4]) as tf.Tensor1D;
    const c1 = sigmoid(0.05) * Math.tanh(0.15); // f c0 = 0
    const h1 = sigmoid(0.2) * Math.tanh(c1);
    const c2 = sigmoid(-0.2 - 0.5 * h1) * c1 + sigmoid(-0.1 + 0.5 * h1) * Math.tanh(-0.3 + h1);
    const h2 = sigmoid(-0.4 + 0.2 * h1) * Math.tanh(c2);
    const fwd = lstmDirection(tf.tensor2d([0.5, -1], [2, 1]), wIh, wHh, zero, zero, false);
    assert.ok(maxAbsDiff(fwd.dataSync(), [h1, h2]) < 1e-6, `${fwd.dataSync()} vs ${[h1, h2]}`);
    // Reversed: the last row is read first, and its output sits at the last row.
    const rc1 = sigmoid(-0.1) * Math.tanh(-0.3);
    const rh1 = sigmoid(-0.4) * Math.tanh(rc1);
    const rc2 = sigmoid(0.1 - 0.5 * rh1) * rc1 + sigmoid(0.05 + 0.5 * rh1) * Math.tanh(0.15 + rh1);
    const rh2 = sigmoid(0.2 + 0.2 * rh1) * Math.tanh(rc2);
    const bwd = lstmDirection(tf.tensor2d([0.5, -1], [2, 1]), wIh, wHh, zero, zero, true);
    assert.ok(maxAbsDiff(bwd.dataSync(), [rh2, rh1]) < 1e-6, `${bwd.dataSync()} vs ${[rh2, rh1]}`);
    // Zero weights, biases only (split over b_ih and b_hh): constant gates, so after t steps
    // c_t = s(i) tanh(g) (1 - s(f)^t) / (1 - s(f)) and h_t = s(o) tanh(c_t).
    const h = 3;
    const T = 6;
    const b = [0.3, -1, 0.5, 1.2, 0, 0.7, -0.4, 0.2, 2, -0.6, 0.1, 0.9]; // i (3), f (3), g (3), o (3)
    const got = lstmDirection(
      tf.tensor2d(Array.from({ length: T * 2 }, (_, k) => k - 5), [T, 2]),
      tf.zeros([4 * h, 2]) as tf.Tensor2D,
      tf.zeros([4 * h, h]) as tf.Tensor2D,
      tf.tensor1d(b.map((x) => x / 2)),
      tf.tensor1d(b.map((x) => x / 2)),
      false,
    ).arraySync();
    for (let t = 1; t <= T; t++) {
      for (let j = 0; j < h; j++) {
        const [i, f, g, o] = [
          sigmoid(b[j]),
          sigmoid(b[h + j]),
          Math.tanh(b[2 * h + j]),
          sigmoid(b[3 * h + j]),
        ];
        const c = (i * g * (1 - f ** t)) / (1 - f);
        assert.ok(Math.abs(got[t - 1][j] - o * Math.tanh(c)) < 1e-6, `t ${t} unit ${j}`);
      }
    }
  }));

Deno.test("p-tuning LSTM: the prompt is PEFT's mlp_head of torch's 2-layer bidirectional LSTM; torch's names and shapes", () => {
  const [p, h, d] = [4, 5, TINY_CONFIG.dim];
  const { applied } = applyTiny(pTuning, { virtualTokens: p, encoderHidden: h, encoderType: "LSTM" });
  const s = applied.state();
  const t = (k: string) => s.get(`prompt_encoder.${k}`)!.data;
  // torch nn.LSTM(d, h, num_layers=2, bidirectional=True), in float64 loops.
  let x: number[][] = Array.from(
    { length: p },
    (_, j) => Array.from(t("embedding.weight").subarray(j * d, (j + 1) * d)),
  );
  for (let k = 0; k < 2; k++) {
    const next: number[][] = Array.from({ length: p }, () => []);
    for (
      const [suffix, order] of [[`l${k}`, [...Array(p).keys()]], [
        `l${k}_reverse`,
        [...Array(p).keys()].reverse(),
      ]] as const
    ) {
      const w = {
        ih: t(`lstm_head.weight_ih_${suffix}`),
        hh: t(`lstm_head.weight_hh_${suffix}`),
        bih: t(`lstm_head.bias_ih_${suffix}`),
        bhh: t(`lstm_head.bias_hh_${suffix}`),
      };
      let [hs, cs] = [new Array(h).fill(0), new Array(h).fill(0)];
      for (const j of order) {
        [hs, cs] = lstmStep(x[j], hs, cs, w);
        next[j].push(...hs); // forward half first, then the reverse half
      }
    }
    x = next;
  }
  const want = x.flatMap((row) =>
    dense(
      relu(dense(row, t("mlp_head.0.weight"), t("mlp_head.0.bias"))),
      t("mlp_head.2.weight"),
      t("mlp_head.2.bias"),
    )
  );
  const prompt = (applied as AppliedPTuning).prompt();
  assert.deepEqual(prompt.shape, [p, d]);
  assert.ok(
    maxAbsDiff(prompt.dataSync(), want) < 1e-5,
    `prompt differs by ${maxAbsDiff(prompt.dataSync(), want)}`,
  );
  prompt.dispose();
  const lstmShapes = (k: number, inF: number) =>
    [`l${k}`, `l${k}_reverse`].flatMap((sfx) => [
      [`prompt_encoder.lstm_head.weight_ih_${sfx}`, [4 * h, inF]],
      [`prompt_encoder.lstm_head.weight_hh_${sfx}`, [4 * h, h]],
      [`prompt_encoder.lstm_head.bias_ih_${sfx}`, [4 * h]],
      [`prompt_encoder.lstm_head.bias_hh_${sfx}`, [4 * h]],
    ]);
  assert.deepEqual(
    [...s].map(([k, a]) => [k, a.shape]),
    [
      ["prompt_encoder.embedding.weight", [p, d]],
      ...lstmShapes(0, d),
      ...lstmShapes(1, 2 * h),
      ["prompt_encoder.mlp_head.0.weight", [2 * h, 2 * h]],
      ["prompt_encoder.mlp_head.0.bias", [2 * h]],
      ["prompt_encoder.mlp_head.2.weight", [d, 2 * h]],
      ["prompt_encoder.mlp_head.2.bias", [d]],
    ],
  );
  // torch's RNN init: every LSTM tensor U(+-1/sqrt(h)), spread over the bound.
  for (const [k, a] of s) {
    if (!k.includes("lstm_head")) continue;
    const max = Math.max(...a.data.map(Math.abs));
    assert.ok(max <= 1 / Math.sqrt(h) && max > 0.5 / Math.sqrt(h), `${k}: max |x| ${max}`);
  }
  applied.dispose();
});

Deno.test("p-tuning LSTM: trainable count is PEFT's (embedding + torch nn.LSTM + 2-layer mlp_head)", () => {
  // p = 3, dim 16, h = 5, 2 layers: embedding 3*16 = 48; torch nn.LSTM per direction,
  // 4h(in + h) + 8h: layer 0 20*21 + 40 = 460, layer 1 20*15 + 40 = 340, both directions 1600;
  // mlp_head Linear(10, 10) 110 + Linear(10, 16) 176. Total 1934.
  const options = { virtualTokens: 3, encoderHidden: 5, encoderType: "LSTM" };
  const { applied } = applyTiny(pTuning, options);
  const count = applied.trainable.reduce((a, v) => a + v.size, 0);
  assert.equal(count, 1934);
  assert.equal(pTuning.contract!.parameterCount(TINY_CONFIG, parseMethodConfig(pTuning, options)), 1934);
  applied.dispose();
  // One layer: 48 + 2 * 460 + 110 + 176 = 1254; three: 1934 + 680 = 2614.
  for (const [layers, want] of [[1, 1254], [3, 2614]]) {
    const c = parseMethodConfig(pTuning, { ...options, encoderLayers: layers });
    assert.equal(pTuning.contract!.parameterCount(TINY_CONFIG, c), want);
    const a = applyTiny(pTuning, { ...options, encoderLayers: layers });
    assert.equal(a.applied.trainable.reduce((s, v) => s + v.size, 0), want);
    a.applied.dispose();
  }
  assert.throws(
    () => applyTiny(pTuning, { virtualTokens: 3, encoderLayers: 3 }),
    /encoderLayers=3 applies to encoderType=LSTM only/,
  );
});

Deno.test("p-tuning LSTM: trains only the encoder with a frozen backbone; state round trip; export as LSTM", () => {
  const options = { virtualTokens: 3, encoderHidden: 4, encoderType: "LSTM" };
  const { model, applied } = applyTiny(pTuning, options);
  const { grads } = tf.variableGrads(() => model.lmLoss(tinyBatch()).loss);
  assert.deepEqual(Object.keys(grads).sort(), applied.trainable.map((v) => v.name).sort());
  assert.ok(
    Object.values(grads).every((g) => tf.max(tf.abs(g)).dataSync()[0] > 0),
    "an encoder tensor got no gradient",
  );
  assertTrainsFrozenBase(model, applied);
  const e = applied.peftExport!();
  assert.equal(e.config.encoder_reparameterization_type, "LSTM");
  assert.equal(e.config.encoder_num_layers, 2);
  assertExportedPromptReproduces(model, e.tensors.get("prompt_embeddings")!);
  applied.dispose();
  model.dispose();
  assertStateRoundTrip(pTuning, options);
});
