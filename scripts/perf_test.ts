import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { countParameters } from "../models/config.ts";
import { configFromHf } from "../models/hf.ts";
import { namedModel } from "../models/named_models.ts";
import { forwardFlopsPerToken, namedWorkload, peerArgs, REFERENCE } from "./perf.ts";

const PERF = fileURLToPath(new URL("./perf.ts", import.meta.url));

Deno.test("perf: a named workload's forward FLOPs are 2 per linear weight (tied head included) plus attention", () => {
  for (const name of ["qwen3-0.6b", "llama-3.2-1b", "smollm2-135m"]) {
    const config = configFromHf(namedModel(name).config);
    const w = namedWorkload(config);
    // No biases in these models: every parameter but the norm gains is a matmul weight used once
    // per token (the tied embedding once, as the LM head; its gather costs no FLOPs).
    const norms = config.nLayers * (2 * config.dim + (config.qkNorm ? 2 * config.headDim : 0)) + config.dim;
    const attention = 4 * config.nLayers * w.seq * config.nHeads * config.headDim;
    assert.equal(forwardFlopsPerToken(w), 2 * (countParameters(config) - norms) + attention, name);
  }
  // The reference model's figure, as the peer computes it (scripts/peer/torch_llama_lora.py).
  assert.equal(forwardFlopsPerToken(REFERENCE), 2752512);
});

Deno.test("perf: the peer gets Qwen3's shapes, q/k norm, RoPE and LoRA targets", () => {
  const config = configFromHf(namedModel("qwen3-0.6b").config);
  const args = peerArgs(namedWorkload(config), config, "bfloat16");
  const flag = (k: string) => args[args.indexOf(`--${k}`) + 1];
  assert.deepEqual(
    [
      "dim",
      "layers",
      "heads",
      "kv-heads",
      "head-dim",
      "hidden",
      "vocab",
      "rope-theta",
      "rope-style",
      "targets",
    ]
      .map(flag),
    ["1024", "28", "16", "8", "128", "3072", "151936", "1000000", "half", "q,k,v,o"],
  );
  assert.ok(args.includes("--qk-norm") && !args.includes("--qkv-bias"));
  assert.equal(flag("dtype"), "bfloat16");
});

Deno.test("perf: an unknown workload, and a real-size one off the native backend, are usage errors (exit 2)", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PERF, ...args],
      stderr: "piped",
    })
      .output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const unknown = await run(["--workload", "gpt-5"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown --workload 'gpt-5'; use reference, default, qwen3-0.6b/);
  const wasm = await run(["--workload", "qwen3-0.6b", "--backend", "wasm"]);
  assert.equal(wasm.code, 2);
  assert.match(wasm.stderr, /needs the native backend: use --backend native/);
});

Deno.test("perf --quant: usage errors for calibration schemes and the peer; nf4 packs the reference decoder to 4.5 bits", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PERF, "--backend", "wasm", "--repeats", "1", "--steps", "1", "--json", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  };
  const gptq = await run(["--quant", "gptq4"]);
  assert.equal(gptq.code, 2);
  assert.match(
    gptq.stderr,
    /--quant gptq4 quantizes against recorded activations.*deno task bench --quant gptq4/,
  );
  const peer = await run(["--quant", "nf4", "--peer"]);
  assert.equal(peer.code, 2);
  assert.match(peer.stderr, /drop --peer or --quant/);
  const nf4 = await run(["--quant", "nf4"]);
  assert.equal(nf4.code, 0, nf4.stderr);
  const result = JSON.parse(nf4.stdout);
  assert.equal(result.quant, "nf4");
  // Frozen: the fp32 embedding (4096 x 128) and 9 RMSNorm gains of 128, plus every decoder linear
  // (4 x (q 128x128, k 64x128, v 64x128, o 128x128, gate/up/down 3 x 384x128)) at 4 bits and one
  // float32 absmax per block of 64: 4.5 bits per weight.
  const linearParams = 4 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 384 * 128);
  const bytes = 4 * (4096 * 128 + 9 * 128) + linearParams * 4.5 / 8;
  assert.equal(result.frozenMiB, bytes / 2 ** 20);
  assert.ok(result.trainStepMs > 0);
});
