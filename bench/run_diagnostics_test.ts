import assert from "node:assert/strict";
import { STORIES_MODEL as STORIES } from "../models/fixtures.ts";
import { initBackend } from "../models/backend.ts";
import { executeRun } from "./run.ts";
import { buildRunConfigs } from "./config.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { parseCli } from "../models/util/args.ts";
import type { RunConfig } from "./record.ts";
import type { AttentionProbe } from "../methods/diagnostics/attention_probe.ts";

function config(args: string[]): RunConfig {
  const { values } = parseCli(
    [
      "--model",
      STORIES,
      "--max-eval",
      "8",
      "--train-per-class",
      "2",
      "--epochs",
      "1",
      "--diagnostics",
      ...args,
    ],
    BENCH_SPEC,
  );
  return buildRunConfigs(values as Record<string, unknown>)[0];
}

const backend = await initBackend("wasm");

interface Attention {
  frozen: AttentionProbe;
  adapted: AttentionProbe;
  deltaB: number;
  deltaBPerLayer: number[];
}

Deno.test("bench --diagnostics: update spectra per layer and attention entropy frozen vs adapted", async () => {
  const lora = await executeRun(config(["--rank", "4"]), { backend, quiet: true });
  assert.equal(lora.status, "success", lora.error);
  assert.equal(lora.details?.leakedTensors, undefined, "the diagnostics leaked tensors");
  const d = lora.diagnostics as {
    nominalRank: number;
    layers: Record<string, unknown>;
    attention: Attention;
  };
  assert.equal(d.nominalRank, 4);
  assert.equal(Object.keys(d.layers).length, 10, "q and v of 5 layers");
  const a = d.attention;
  assert.equal(a.frozen.perLayer.length, 5);
  const ls = a.frozen.overall.lengths;
  assert.ok(ls.length >= 2 && ls.every((l, i) => i === 0 || l > ls[i - 1]), `lengths ${ls}`);
  assert.deepEqual(a.adapted.overall.lengths, ls, "same texts, same lengths");
  assert.ok(a.frozen.sequences.every((n) => n >= 4 && n <= 8));
  for (const p of [a.frozen, a.adapted]) {
    p.overall.entropy.forEach((s, i) => assert.ok(s > 0 && s <= Math.log(ls[i]), `S(${ls[i]}) = ${s}`));
  }
  assert.equal(a.deltaB, a.adapted.overall.fit.b - a.frozen.overall.fit.b);

  // The frozen baseline trains only the head: the model's attention is unchanged, deltaB = 0
  // exactly, and its frozen curve is LoRA's frozen curve (same base, same texts).
  const frozen = await executeRun(config(["--method", "frozen"]), { backend, quiet: true });
  assert.equal(frozen.status, "success", frozen.error);
  const f = frozen.diagnostics as { layers: Record<string, unknown>; attention: Attention };
  assert.deepEqual(f.layers, {}, "no weight update to diagnose");
  assert.equal(f.attention.deltaB, 0);
  assert.deepEqual(f.attention.adapted.overall, f.attention.frozen.overall);
  assert.deepEqual(f.attention.frozen.overall, a.frozen.overall);
});
