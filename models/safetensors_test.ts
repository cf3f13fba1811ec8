import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  MAX_HEADER_BYTES,
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsHeaderFile,
  writeSafetensors,
  writeSafetensorsFile,
} from "./safetensors.ts";

/** Build a safetensors file by hand: u64 LE header length, header text, data bytes. */
function build(header: string, data: number[]): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("f16 decode: published bit patterns", () => {
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0xc000), -2);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(f16BitsToF32(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f16BitsToF32(0x0400), 2 ** -14); // smallest normal
  assert.equal(f16BitsToF32(0x3555), 0.333251953125);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.equal(f16BitsToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

Deno.test("f16 encode: round to nearest even, subnormals, overflow, specials", () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(-2), 0xc000);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(65519), 0x7bff); // below the midpoint 65520
  assert.equal(f32ToF16Bits(65520), 0x7c00); // midpoint, ties to even = inf
  assert.equal(f32ToF16Bits(1e6), 0x7c00);
  assert.equal(f32ToF16Bits(1 / 3), 0x3555);
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even mantissa 0
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even mantissa 2
  assert.equal(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01); // just above the tie
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie between 0 and 2^-24 -> 0
  assert.equal(f32ToF16Bits(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002); // tie between 1 and 2 ulps -> 2
  assert.equal(f32ToF16Bits(5 * 2 ** -25), 0x0002); // tie between 2 and 3 ulps -> 2
  assert.equal(f32ToF16Bits(2 ** -14 - 2 ** -26), 0x0400); // rounds up into the smallest normal
  assert.equal(f32ToF16Bits(1e-30), 0x0000);
  assert.equal(f32ToF16Bits(-1e-30), 0x8000);
  assert.equal(f32ToF16Bits(-0), 0x8000);
  assert.equal(f32ToF16Bits(Infinity), 0x7c00);
  assert.equal(f32ToF16Bits(-Infinity), 0xfc00);
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

Deno.test("bf16: published bit patterns and ties to even", () => {
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0xc000), -2);
  assert.equal(bf16BitsToF32(0x7f7f), 3.3895313892515355e38); // largest finite bfloat16
  assert.equal(bf16BitsToF32(0x0001), 2 ** -133); // smallest subnormal
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(1 / 3), 0x3eab); // 0x3EAAAAAB rounds up
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie -> even
  assert.equal(f32ToBf16Bits(2 ** -133), 0x0001);
  assert.equal(f32ToBf16Bits(3.4028234663852886e38), 0x7f80); // f32 max overflows to inf
  assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
  const nan = f32ToBf16Bits(NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
});

Deno.test("read hand-built file with every dtype and metadata", () => {
  const header = JSON.stringify({
    __metadata__: { format: "pt" },
    a: { dtype: "F16", shape: [2, 2], data_offsets: [0, 8] },
    b: { dtype: "BF16", shape: [1], data_offsets: [8, 10] },
    c: { dtype: "F32", shape: [1], data_offsets: [10, 14] },
    d: { dtype: "I32", shape: [2], data_offsets: [14, 22] },
    e: { dtype: "U8", shape: [3], data_offsets: [22, 25] },
    f: { dtype: "F32", shape: [0, 4], data_offsets: [25, 25] },
  });
  const bytes = build(header, [
    ...[0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00], // F16 1, -2, 65504, 2^-24
    ...[0x80, 0x3f], // BF16 1
    ...[0x00, 0x00, 0xc0, 0x3f], // F32 1.5 (unaligned on purpose: offset 10)
    ...[0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00], // I32 -1, 7
    ...[1, 2, 255], // U8
  ]);
  const { tensors, metadata } = readSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual([...tensors.keys()], ["a", "b", "c", "d", "e", "f"]);
  assert.deepEqual(tensors.get("a")!.shape, [2, 2]);
  assert.deepEqual([...tensors.get("a")!.data], [1, -2, 65504, 2 ** -24]);
  assert.ok(tensors.get("a")!.data instanceof Float32Array);
  assert.deepEqual([...tensors.get("b")!.data], [1]);
  assert.deepEqual([...tensors.get("c")!.data], [1.5]);
  assert.ok(tensors.get("d")!.data instanceof Int32Array);
  assert.deepEqual([...tensors.get("d")!.data], [-1, 7]);
  assert.ok(tensors.get("e")!.data instanceof Uint8Array);
  assert.deepEqual([...tensors.get("e")!.data], [1, 2, 255]);
  assert.equal(tensors.get("f")!.data.length, 0);
});

Deno.test("write: exact bytes for one F32 tensor (format spec layout, space padding)", () => {
  const out = writeSafetensors({ a: { data: new Float32Array([1, 2]), shape: [2] } });
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes -> padded to 56
  const expected = build(json + "  ", [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
  assert.deepEqual(out, expected);
});

Deno.test("write: F16/BF16 encoding bytes and name/element-size ordering", () => {
  const out = writeSafetensors({
    z: { data: new Uint8Array([9]), shape: [1] },
    y: { data: new Float32Array([1, -2]), shape: [2], dtype: "F16" },
    x: { data: new Float32Array([1]), shape: [1], dtype: "BF16" },
    w: { data: new Int32Array([5]), shape: [1, 1] },
  });
  const n = Number(new DataView(out.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(out.subarray(8, 8 + n)));
  // 4-byte dtypes first, then 2-byte sorted by name, then 1-byte.
  assert.deepEqual(header.w.data_offsets, [0, 4]);
  assert.deepEqual(header.x.data_offsets, [4, 6]);
  assert.deepEqual(header.y.data_offsets, [6, 10]);
  assert.deepEqual(header.z.data_offsets, [10, 11]);
  assert.deepEqual([...out.subarray(8 + n)], [5, 0, 0, 0, 0x80, 0x3f, 0x00, 0x3c, 0x00, 0xc0, 9]);
});

Deno.test("round trip through a file, with metadata; F16 rounds values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/t.safetensors`;
    const w = new Float32Array([0.1, -3.25, 1e-7, 70000]);
    await writeSafetensorsFile(path, {
      "layers.0.w": { data: w, shape: [2, 2] },
      "layers.0.h": { data: w, shape: [4], dtype: "F16" },
      "q": { data: new Int32Array([-7, 2 ** 31 - 1]), shape: [2] },
    }, { step: "12" });
    const { tensors, metadata } = await readSafetensorsFile(path);
    assert.deepEqual(metadata, { step: "12" });
    assert.deepEqual(tensors.get("layers.0.w")!.data, w);
    assert.equal(tensors.get("layers.0.h")!.dtype, "F16");
    // 0.1 -> 0x2E66 = 0.0999755859375; 1e-7 -> subnormal 2 * 2^-24; 70000 -> inf
    assert.deepEqual([...tensors.get("layers.0.h")!.data], [0.0999755859375, -3.25, 2 * 2 ** -24, Infinity]);
    assert.deepEqual([...tensors.get("q")!.data], [-7, 2 ** 31 - 1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: one clear line naming the file", async () => {
  const src = "bad.safetensors";
  const t = (bytes: Uint8Array, re: RegExp) => assert.throws(() => readSafetensors(bytes, src), re);
  t(new Uint8Array(5), /bad\.safetensors: truncated safetensors file \(5 bytes/);
  t(build("{}", []).subarray(0, 9), /bad\.safetensors: header length 2 runs past the end/);
  t(build("{not json", []), /bad\.safetensors: invalid JSON header/);
  t(build('{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', [0]), /unknown dtype "Q4"/);
  t(build('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /span 4 bytes .* needs 8/);
  t(
    build('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', [0, 0, 0, 0]),
    /truncated: tensor "a" data ends at byte 8/,
  );
  t(
    build(
      '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}',
      [1, 2, 3, 4, 5],
    ),
    /tensors "a" \[0, 4\) and "b" \[3, 5\) overlap/,
  );
  await assert.rejects(
    readSafetensorsFile("/nonexistent/x.safetensors"),
    /not found: \/nonexistent\/x\.safetensors/,
  );
  assert.throws(
    () => writeSafetensors({ a: { data: new Float32Array(3), shape: [2, 2] } }),
    /"a" has 3 values but shape \[2,2\] needs 4/,
  );
  assert.throws(
    () => writeSafetensors({ a: { data: new Int32Array(1), shape: [1], dtype: "F16" } }),
    /needs a Float32Array/,
  );
});

Deno.test("f16 encode: every half is a fixed point and every midpoint rounds to the even neighbour", () => {
  for (let h = 0; h < 0x7c00; h++) {
    const v = f16BitsToF32(h);
    assert.equal(f32ToF16Bits(v), h);
    assert.equal(f32ToF16Bits(-v), h | 0x8000);
    // The midpoint to the next half needs 12 significant bits, so it is exact in float32.
    const mid = (v + f16BitsToF32(h + 1)) / 2;
    const even = h % 2 === 0 ? h : h + 1;
    if (f32ToF16Bits(mid) !== even) assert.fail(`midpoint after 0x${h.toString(16)} -> not even`);
  }
});

Deno.test("errors: a header whose offsets leave holes or trailing bytes, or that repeats a name", () => {
  const t = (bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => readSafetensors(bytes, "lie.safetensors"), re);
  // Sizes match shape x dtype, but the first four bytes belong to no tensor.
  t(
    build('{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}', [0, 0, 0, 0, 1, 2]),
    /^Error: lie\.safetensors: data bytes \[0, 4\) before tensor "a" belong to no tensor; the header's data_offsets are wrong/,
  );
  t(
    build(
      '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}',
      [1, 2, 3, 4],
    ),
    /data bytes \[2, 3\) before tensor "b" belong to no tensor/,
  );
  t(
    build('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [1, 2, 3]),
    /^Error: lie\.safetensors: 1 data bytes after the last tensor belong to no tensor/,
  );
  // JSON keeps the last of two equal keys, so the first one's bytes are left without an owner.
  t(
    build(
      '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
      [1, 2, 3, 4],
    ),
    /data bytes \[0, 2\) before tensor "a" belong to no tensor/,
  );
  t(build('[{"a":1}]', []), /the JSON header is not an object/);
  t(build('{"a":[1]}', []), /tensor "a" has no \{dtype, shape, data_offsets\} entry/);
  t(build('{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}', [1, 2]), /invalid data_offsets \[2,0\]/);
});

Deno.test("header-only reading: same entries as a full read, errors against the file size, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.safetensors`;
    await writeSafetensorsFile(path, {
      w: { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] },
      h: { data: new Float32Array([1]), shape: [1], dtype: "BF16" },
    }, { format: "pt" });
    const header = await readSafetensorsHeaderFile(path);
    const full = await readSafetensorsFile(path);
    assert.deepEqual(header.metadata, { format: "pt" });
    assert.deepEqual(header.entries.map((e) => [e.name, e.dtype, e.shape]), [
      ...[...full.tensors].map(([n, t]) => [n, t.dtype, t.shape]),
    ]);
    const bytes = await Deno.readFile(path);
    assert.equal(header.dataStart + header.entries.reduce((a, e) => Math.max(a, e.end), 0), bytes.length);
    // Truncated: the header is intact, the data is short.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 1));
    await assert.rejects(
      readSafetensorsHeaderFile(path),
      new RegExp(`^Error: ${path}: truncated: tensor "h" data ends at byte 26 of a 25-byte data buffer`),
    );
    await Deno.writeFile(path, bytes.subarray(0, 5));
    await assert.rejects(
      readSafetensorsHeaderFile(path),
      /m\.safetensors: truncated safetensors file \(5 bytes/,
    );
    await assert.rejects(
      readSafetensorsHeaderFile(`${dir}/none.safetensors`),
      /safetensors file not found: .*none/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: a header length above the 100 MB limit is refused before it is read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A sparse file long enough for the claimed header, so only the limit can refuse it.
    const path = `${dir}/huge.safetensors`;
    const claimed = MAX_HEADER_BYTES + 8;
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(claimed), true);
    await Deno.writeFile(path, prefix);
    await Deno.truncate(path, 8 + claimed);
    await assert.rejects(
      readSafetensorsHeaderFile(path),
      new RegExp(`huge\\.safetensors: header length ${claimed} is above the 100000000-byte limit`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
