import assert from "node:assert/strict";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { loftqInit } from "./loftq.ts";
import { dequantizeArray, quantizeCodes } from "./reference.ts";

function frob(w: Float32Array, approx: (i: number) => number): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += (w[i] - approx(i)) ** 2;
  return Math.sqrt(s);
}

Deno.test("LoftQ beats QLoRA init (Q = q(W), B = 0) on a 64x64 weight with a low-rank component", async () => {
  await initBackend("cpu"); // the packed Q is a tfjs tensor
  const rng = new Rng(21);
  const [n, r] = [64, 4];
  // W = 0.02 · noise + U V^T with a rank-4 part of larger scale (as in pretrained weights).
  const u = rng.normalArray(n * r, 0.1);
  const v = rng.normalArray(r * n, 0.1);
  const w = rng.normalArray(n * n, 0.02);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) for (let k = 0; k < r; k++) w[i * n + j] += u[i * r + k] * v[k * n + j];
  }
  for (const config of [{ scheme: "nf4" as const }, { scheme: "int4" as const, doubleQuant: true }]) {
    const res = loftqInit(w, [n, n], { config, rank: r, iterations: 5 });
    // Independent QLoRA baseline.
    const q0 = dequantizeArray(quantizeCodes(w, [n, n], config));
    const qlora = frob(w, (i) => q0[i]);
    assert.ok(Math.abs(res.baselineError - qlora) < 1e-9 * qlora);
    // Recompute ||W - (Q + B A)||_F from the returned pieces.
    const q = res.quantized;
    const qd = dequantizeArray(res.codes);
    const loftq = frob(w, (idx) => {
      const [i, j] = [Math.floor(idx / n), idx % n];
      let ba = 0;
      for (let k = 0; k < r; k++) ba += res.b[i * r + k] * res.a[k * n + j];
      return qd[idx] + ba;
    });
    assert.ok(Math.abs(loftq - res.errors.at(-1)!) < 1e-4 * loftq, "reported error matches");
    assert.ok(loftq < 0.85 * qlora, `${config.scheme}: LoftQ ${loftq} vs QLoRA ${qlora}`);
    assert.equal(res.errors.length, 5);
    assert.equal(q.shape[0], n);
    q.dispose();
  }
});

Deno.test("LoftQ rejects a bad rank or iteration count", () => {
  const w = new Float32Array(16);
  assert.throws(
    () => loftqInit(w, [4, 4], { config: { scheme: "nf4", blockSize: 16 }, rank: 5 }),
    /rank must be an integer in \[1, 4\]/,
  );
  assert.throws(
    () => loftqInit(w, [4, 4], { config: { scheme: "nf4", blockSize: 16 }, rank: 1, iterations: 0 }),
    /iterations must be an integer >= 1/,
  );
});
