import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../models/backend.ts";
import { Rng } from "../../models/util/rng.ts";
import { type FieldBits, packFields, unpackFields, unpackFieldsTf } from "./pack.ts";

Deno.test("packFields layout: field i at bits [b·(i mod p), b·(i mod p + 1)) of word floor(i/p)", () => {
  assert.deepEqual(Array.from(packFields([1, 2, 3, 4, 5, 6, 7, 15], 4)), [0xf7654321 | 0]);
  assert.deepEqual(Array.from(packFields([0x12, 0xff, 0, 0x80, 7], 8)), [0x8000ff12 | 0, 7]);
  assert.deepEqual(Array.from(packFields([0xbeef, 0xdead], 16)), [0xdeadbeef | 0]);
  assert.throws(() => packFields([16], 4), /field 0 = 16 does not fit in 4 unsigned bits/);
  // 2 bits: 16 per word, the last one in the sign bits; 3 bits: 10 per word, bits 30-31 unused.
  assert.deepEqual(Array.from(packFields([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 2)), [
    0xc0000039 | 0,
  ]);
  assert.deepEqual(Array.from(packFields([1, 2, 3, 4, 5, 6, 7, 0, 1, 7, 5], 3)), [0x391f58d1, 5]);
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`unpackFieldsTf equals unpackFields on ${backend}, including the sign-bit field`, async () => {
    await initBackend(backend);
    const rng = new Rng(8);
    for (const bits of [2, 3, 4, 8, 16] as FieldBits[]) {
      const n = 1001;
      const fields = Array.from({ length: n }, () => rng.int(2 ** bits));
      fields[0] = 2 ** bits - 1; // all ones, and top fields with the high bit set below
      const per = Math.floor(32 / bits);
      for (let i = per - 1; i < n; i += per) if (i % 3 === 0) fields[i] = 2 ** bits - 1;
      const words = packFields(fields, bits);
      assert.deepEqual(Array.from(unpackFields(words, bits, n)), fields);
      const got = tf.tidy(() => unpackFieldsTf(tf.tensor1d(words, "int32"), bits).dataSync());
      assert.deepEqual(Array.from(got).slice(0, n), fields);
    }
  });
}
