import assert from "node:assert/strict";
import { Rng } from "../models/util/rng.ts";
import { diagnosticsOf } from "./diagnostics.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";

const lora = await fixtureRecord(fixtureConfig({ diagnostics: true }), new Rng(1), 4, 2);

Deno.test("diagnosticsOf reads layers and attention of a harness-shaped record", () => {
  const d = diagnosticsOf(lora)!;
  assert.equal(d.nominalRank, 8);
  assert.deepEqual(d.layers.map((l) => l.name), [
    "layers.0.attn.q",
    "layers.0.attn.v",
    "layers.1.attn.q",
    "layers.1.attn.v",
  ]);
  for (const l of d.layers) {
    // 16 = 2^4 on each side: 8 sites, 7 cuts; a rank-8 update has 8 nonzero singular values.
    assert.equal(l.entanglement!.entropy.length, 7);
    assert.equal(l.singularValues.filter((s) => s > 1e-9 * l.singularValues[0]).length, 8);
    assert.ok(l.effectiveRank > 1 && l.effectiveRank < 8);
  }
  const a = d.attention!;
  assert.deepEqual(a.frozen.lengths, [4, 8, 16, 32, 64]);
  assert.equal(a.deltaB, a.adapted.fit.b - a.frozen.fit.b);
});

Deno.test("diagnosticsOf leaves out what is malformed, and is null when nothing is left", () => {
  const raw = structuredClone(lora.diagnostics) as Record<string, Record<string, Record<string, unknown>>>;
  raw.layers["layers.0.attn.q"].singularValues = [1, "x"];
  raw.layers["layers.0.attn.v"].entanglement = { sites: [2, 2], entropy: [0.1, 0.2], bound: [0.6] };
  raw.attention.deltaB = null as unknown as Record<string, unknown>;
  const d = diagnosticsOf({ ...lora, diagnostics: raw })!;
  assert.equal(d.layers.length, 3, "the layer with a bad spectrum is dropped");
  assert.equal(d.layers[0].entanglement, null, "a profile whose lengths disagree is dropped");
  assert.equal(d.attention, null);
  assert.equal(
    diagnosticsOf({ ...lora, diagnostics: { nominalRank: 4, layers: {}, attention: null } }),
    null,
  );
  assert.equal(diagnosticsOf({ ...lora, diagnostics: undefined }), null);
  assert.equal(diagnosticsOf({ ...lora, diagnostics: [] as unknown as Record<string, unknown> }), null);
});
