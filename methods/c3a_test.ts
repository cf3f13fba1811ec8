/**
 * C3A against PEFT's `BlockCircularConvolution.forward` written out with a naive complex DFT:
 * y_m = Re fft(sum_n ifft(x_n) * fft(w_mn)) / in_features; the merged dW against PEFT's
 * `get_circulant_fast` (the same map applied to the identity); PEFT's inits and the refusals.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { plainContext } from "./common.ts";
import { parseMethodConfig } from "./registry.ts";
import { c3a, type C3aLinear } from "./c3a.ts";
import { assertIdentityAtInit, assertStateRoundTrip } from "./method_checks_test_utils.ts";
import { maxAbsDiff, TINY_CONFIG } from "./tiny_test_utils.ts";

await initBackend("cpu");

type Complex = [number, number][];

/** Naive DFT, sign -1 (torch.fft.fft) or +1 with 1/b (torch.fft.ifft). */
function dft(v: Complex, inverse: boolean): Complex {
  const b = v.length;
  const sign = inverse ? 1 : -1;
  return v.map((_, k) => {
    let [re, im] = [0, 0];
    v.forEach(([a, c], t) => {
      const ang = (sign * 2 * Math.PI * k * t) / b;
      re += a * Math.cos(ang) - c * Math.sin(ang);
      im += a * Math.sin(ang) + c * Math.cos(ang);
    });
    return (inverse ? [re / b, im / b] : [re, im]) as [number, number];
  });
}

/** PEFT's BlockCircularConvolution forward / in_features for one row x [in], kernel w [m, n, b]. */
function peftC3a(x: Float32Array, w: Float32Array, m: number, n: number, b: number): number[] {
  const real = (a: ArrayLike<number>): Complex => Array.from(a, (v) => [v, 0] as [number, number]);
  const xf = Array.from({ length: n }, (_, j) => dft(real(x.subarray(j * b, (j + 1) * b)), true));
  const y: number[] = [];
  for (let mi = 0; mi < m; mi++) {
    const acc: Complex = Array.from({ length: b }, () => [0, 0]);
    for (let j = 0; j < n; j++) {
      const wf = dft(real(w.subarray((mi * n + j) * b, (mi * n + j + 1) * b)), false);
      for (let k = 0; k < b; k++) {
        const [p, q] = xf[j][k];
        const [r, s] = wf[k];
        acc[k][0] += p * r - q * s;
        acc[k][1] += p * s + q * r;
      }
    }
    y.push(...dft(acc, false).map(([re]) => re / x.length));
  }
  return y;
}

Deno.test("c3a: the layer's update equals PEFT's FFT block circular convolution, and dW its circulant", () => {
  const model = LlamaModel.random(TINY_CONFIG, new Rng(1), 0.2);
  const applied = c3a.apply(
    model,
    parseMethodConfig(c3a, { targets: "mlp", blockSize: 8, init: "gaussian" }),
    plainContext(new Rng(2)),
  );
  const layer = model.linear("layers.0.mlp.down") as C3aLinear; // out 16, in 24: m 2, n 3
  const [out, inF, b] = [16, 24, 8];
  const w = layer.kernel.dataSync() as Float32Array;
  assert.deepEqual(layer.kernel.shape, [2, 3, 8]);
  const xs = new Rng(3).normalArray(2 * inF);
  const x = tf.tensor2d(xs, [2, inF]);
  const y = tf.sub(layer.forward(x), layer.base.forward(x)).dataSync();
  const want = [...peftC3a(xs.subarray(0, inF), w, 2, 3, b), ...peftC3a(xs.subarray(inF), w, 2, 3, b)];
  assert.ok(maxAbsDiff(y, want) < 1e-5, `forward differs by ${maxAbsDiff(y, want)}`);
  assert.ok(Math.max(...want.map(Math.abs)) > 0.1);
  // get_circulant_fast: the map applied to the identity's rows, transposed to [out, in].
  const dw = layer.delta().dataSync();
  for (let i = 0; i < inF; i++) {
    const e = new Float32Array(inF);
    e[i] = 1;
    const col = peftC3a(e, w, 2, 3, b);
    for (let o = 0; o < out; o++) {
      assert.ok(Math.abs(dw[o * inF + i] - col[o]) < 1e-6, `dW[${o}, ${i}]`);
    }
  }
  applied.dispose();
  model.dispose();
});

Deno.test("c3a: PEFT's xavier_uniform default (not identity), kaiming bound, zeros is the identity", () => {
  const model = LlamaModel.random(TINY_CONFIG, new Rng(1), 0.2);
  const kernel = (init: string) => {
    const a = c3a.apply(
      model,
      parseMethodConfig(c3a, { targets: "all-linear", blockSize: 4, init }),
      plainContext(new Rng(2)),
    );
    const s = a.state().get("layers.0.mlp.up.c3a_kernel")!; // out 24, in 16
    a.dispose();
    return s;
  };
  const x = kernel("xavier_uniform");
  assert.deepEqual(x.shape, [6, 4, 4]);
  const bound = Math.sqrt(3) * Math.sqrt(2 / (16 + 24));
  const max = Math.max(...x.data.map(Math.abs));
  assert.ok(max <= bound && max > 0.8 * bound, `xavier max ${max} vs ${bound}`);
  const k = Math.max(...kernel("kaiming_uniform").data.map(Math.abs));
  assert.ok(k <= 1 / 4 && k > 0.8 / 4, `kaiming max ${k}`);
  assert.equal(parseMethodConfig(c3a, {}).init, "xavier_uniform");
  assert.equal(parseMethodConfig(c3a, {}).blockSize, 256);
  assertIdentityAtInit(c3a, { targets: "all-linear", blockSize: 8, init: "zeros" });
  model.dispose();
});

Deno.test("c3a: trainable count out*in/b per layer; a block size that does not divide is an error", () => {
  const c = parseMethodConfig(c3a, { targets: "q+v", blockSize: 4 });
  // q [16, 16], v [8, 16] in each of 2 layers.
  assert.equal(c3a.contract!.parameterCount(TINY_CONFIG, c), 2 * (16 * 16 + 8 * 16) / 4);
  const model = LlamaModel.random(TINY_CONFIG, new Rng(1), 0.2);
  assert.throws(
    () =>
      c3a.apply(model, parseMethodConfig(c3a, { targets: "mlp", blockSize: 16 }), plainContext(new Rng(2))),
    /--opt blockSize=16 must divide layers\.0\.mlp\.gate's input 16 and output 24 sizes/,
  );
  model.dispose();
});

Deno.test("c3a: state round trip", () => assertStateRoundTrip(c3a, { targets: "q+v", blockSize: 4 }));

Deno.test("c3a: PEFT export: c3a_kernel per layer; q/k of an interleaved-RoPE model refused", () => {
  const model = LlamaModel.random(TINY_CONFIG, new Rng(1), 0.2);
  const a = c3a.apply(
    model,
    parseMethodConfig(c3a, { targets: "q+v", blockSize: 4 }),
    plainContext(new Rng(2)),
  );
  const e = a.peftExport!();
  assert.equal(e.refused, undefined);
  assert.deepEqual([e.config.peft_type, e.config.block_size, e.config.init_weights], [
    "C3A",
    4,
    "xavier_uniform",
  ]);
  assert.deepEqual(e.config.target_modules, ["q_proj", "v_proj"]);
  assert.deepEqual(
    e.tensors.get("base_model.model.model.layers.1.self_attn.v_proj.c3a_kernel")!.shape,
    [2, 4, 4],
  );
  a.dispose();
  model.dispose();
  const inter = LlamaModel.random(validateConfig({ ...TINY_CONFIG, ropeStyle: "interleaved" }), new Rng(1));
  const cfg = (targets: string) => parseMethodConfig(c3a, { targets, blockSize: 4 });
  const r = c3a.apply(inter, cfg("q+v"), plainContext(new Rng(2)));
  assert.match(r.peftExport!().refused!, /--targets without q,k/);
  r.dispose();
  const ok = c3a.apply(inter, cfg("v,o"), plainContext(new Rng(2)));
  assert.equal(ok.peftExport!().refused, undefined);
  ok.dispose();
  inter.dispose();
});
