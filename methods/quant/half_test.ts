import assert from "node:assert/strict";
import { Rng } from "../../models/util/rng.ts";
import { fromBf16Bits, fromFp16Bits, halfDecodeTables, toBf16Bits, toFp16Bits } from "./half.ts";

Deno.test("fp16 encode/decode matches the platform's Float16Array (IEEE round-half-even)", () => {
  const rng = new Rng(2);
  const f16 = new Float16Array(1);
  const u16 = new Uint16Array(f16.buffer);
  const values: number[] = [
    0,
    -0,
    1,
    -1,
    65504,
    65519.99,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    2 ** -14,
    1 + 2 ** -11,
  ];
  for (let i = 0; i < 20000; i++) values.push(Math.fround(rng.normal() * 2 ** (rng.int(40) - 28)));
  for (const v of values) {
    const x = Math.fround(v);
    f16[0] = x;
    assert.equal(toFp16Bits(x), u16[0], `encode ${x}`);
    assert.ok(Object.is(fromFp16Bits(u16[0]), f16[0]), `decode ${u16[0].toString(16)}`);
  }
  assert.equal(toFp16Bits(1), 0x3c00);
  assert.equal(toFp16Bits(65504), 0x7bff);
  assert.equal(toFp16Bits(2 ** -24), 0x0001);
});

Deno.test("bf16: known patterns, round-half-even, relative error <= 2^-8", () => {
  assert.equal(toBf16Bits(1), 0x3f80);
  assert.equal(toBf16Bits(Math.PI), 0x4049); // float32 pi = 0x40490fdb, low half < 0x8000
  assert.equal(toBf16Bits(-2), 0xc000);
  const u = new Uint32Array(1);
  const f = new Float32Array(u.buffer);
  u[0] = 0x3f808000; // exactly halfway between 0x3f80 and 0x3f81: even is 0x3f80
  assert.equal(toBf16Bits(f[0]), 0x3f80);
  u[0] = 0x3f818000; // halfway between 0x3f81 and 0x3f82: even is 0x3f82
  assert.equal(toBf16Bits(f[0]), 0x3f82);
  const rng = new Rng(4);
  for (let i = 0; i < 5000; i++) {
    const x = Math.fround(rng.normal() * 10);
    assert.ok(Math.abs(fromBf16Bits(toBf16Bits(x)) - x) <= Math.abs(x) * 2 ** -8);
  }
});

Deno.test("halfDecodeTables reproduce every fp16 and finite bf16 pattern exactly", () => {
  for (const kind of ["fp16", "bf16"] as const) {
    const { a, b } = halfDecodeTables(kind);
    const [man, exp] = kind === "fp16" ? [10, 5] : [7, 8];
    for (let h = 0; h < 65536; h++) {
      const e = (h >> man) & (2 ** exp - 1);
      if (e === 2 ** exp - 1) continue; // inf/nan never stored
      const m = h & (2 ** man - 1);
      const sign = h >> (man + exp) ? -1 : 1;
      const viaTables = Math.fround(Math.fround(a[e] + Math.fround(m * b[e])) * sign);
      const ref = kind === "fp16" ? fromFp16Bits(h) : fromBf16Bits(h);
      assert.ok(Object.is(viaTables, ref), `${kind} ${h.toString(16)}: ${viaTables} vs ${ref}`);
    }
  }
});
