/**
 * `deno task perf [--workload reference] [--backend B] [--repeats N] [--peer] [--json]`: the
 * performance benchmark (not a test).
 *
 * The reference workload (the one `scripts/peer/torch_llama_lora.py` runs in PyTorch):
 * Llama-family decoder, dim 128, 4 layers, 4 heads, 2 KV heads, SwiGLU 384, vocabulary 4096,
 * batch 16 x 64 tokens, LoRA rank 8 (alpha 16) on q and v through peft-bench's own LoRA module,
 * AdamW; a train step (forward, backward, update) and a frozen inference forward with logits.
 *
 * Counted FLOPs follow the peer's formula for the forward pass (matmuls only):
 * 2 (L (2 D^2 + 2 kvDim D + 3 F D) + V D) + 4 L T D per token. A LoRA train step counts
 * 2x forward: every matmul also runs once backward for its input gradient, while weight gradients
 * exist only for the LoRA factors (negligible); the common "6N" rule would count 3x.
 * The sgemm peak is reported at 1024^3 and "for this size": the backend's matMul running exactly the
 * products of one train step (shapes from tf.profile) back to back, nothing else. Each of the
 * `--repeats` rounds times both peaks and `--steps` train steps back to back; reported numbers are
 * medians over the rounds, and the train step's share of each peak is the median per-round ratio.
 * @module
 */
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { helpText, numberFlag, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { AdamW } from "../methods/optim.ts";
import { lora } from "../methods/lora.ts";
import { parseMethodConfig } from "../methods/registry.ts";
import { plainContext } from "../methods/common.ts";
import { matMulMs } from "../bench/env.ts";
import { median } from "../models/util/numeric.ts";

const SPEC = {
  workload: { type: "string", default: "reference", help: "workload: reference" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  repeats: { type: "string", default: "5", help: "measurements per figure (median reported)" },
  steps: { type: "string", default: "10", help: "timed steps per measurement" },
  peer: { type: "boolean", default: false, help: "also run the PyTorch peer (needs python3-torch)" },
  json: { type: "boolean", default: false, help: "print JSON" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** The reference workload's shapes. */
export const REFERENCE = {
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  hidden: 384,
  vocab: 4096,
  seq: 64,
  batch: 16,
  rank: 8,
};

/** Forward FLOPs per token of the reference model, by the peer's formula. */
export function forwardFlopsPerToken(w = REFERENCE): number {
  const hs = w.dim / w.heads;
  const perLayer = 2 * w.dim * w.dim + 2 * w.kvHeads * hs * w.dim + 3 * w.hidden * w.dim;
  return 2 * (w.layers * perLayer + w.vocab * w.dim) + w.layers * 4 * w.seq * w.dim;
}

async function sgemmGflops(n: number, repeats: number): Promise<number> {
  return (2 * n ** 3) / (await matMulMs(n, repeats, 1) / 1000) / 1e9;
}

/** One matrix product of a train step: batch x [m, k] @ [k, n]. */
interface Product {
  batch: number;
  m: number;
  n: number;
  k: number;
}

/** The matrix products one call of `fn` runs and its peak tensor bytes (from tf.profile). */
async function profileStep(fn: () => Promise<void>): Promise<{ products: Product[]; peakBytes: number }> {
  const profile = await tf.profile(fn);
  const products = profile.kernels.filter((k) => k.name === "BatchMatMul").map((k) => {
    const a = k.inputShapes[0] as number[];
    const out = k.outputShapes[0] as number[];
    const [m, n] = out.slice(-2);
    const batch = tf.util.sizeFromShape(out.slice(0, -2));
    return { batch, m, n, k: tf.util.sizeFromShape(a) / (batch * m) };
  });
  return { products, peakBytes: profile.peakBytes };
}

/**
 * The backend's matMul on exactly these products, run back to back on resident operands: the
 * sgemm peak "for this size", what a train step made only of its matmuls reaches. `gflops()`
 * times one pass (after a warm-up pass).
 */
function productsReplay(products: Product[]): { gflops(): Promise<number>; dispose(): void } {
  const operands = products.map((p) =>
    [
      tf.randomUniform([p.batch, p.m, p.k], -1, 1, "float32", 1),
      tf.randomUniform([p.batch, p.k, p.n], -1, 1, "float32", 2),
    ] as [tf.Tensor3D, tf.Tensor3D]
  );
  const flops = products.reduce((s, p) => s + 2 * p.batch * p.m * p.n * p.k, 0);
  const pass = async () => {
    const outs = operands.map(([a, b]) => tf.matMul(a, b));
    await outs[outs.length - 1].data();
    tf.dispose(outs);
  };
  let warm = false;
  return {
    async gflops() {
      if (!warm) await pass();
      warm = true;
      const t0 = performance.now();
      await pass();
      return flops / ((performance.now() - t0) / 1000) / 1e9;
    },
    dispose: () => tf.dispose(operands.flat()),
  };
}

async function timeLoop(
  fn: () => Promise<void>,
  steps: number,
  repeats: number,
  warmup = 3,
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const per: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await fn();
    per.push((performance.now() - t0) / 1000 / steps);
  }
  return median(per);
}

async function runPeer(): Promise<Record<string, number> | { error: string }> {
  const script = fileURLToPath(new URL("./peer/torch_llama_lora.py", import.meta.url));
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--threads", "2"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop() ?? "";
      return {
        error: `peer failed: ${err} (install it with \`apt-get install python3-torch libopenblas0-pthread\`)`,
      };
    }
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch (err) {
    return { error: `peer not runnable: ${(err as Error).message}` };
  }
}

await runMain(async () => {
  const { values: o } = parseCli(Deno.args, SPEC);
  if (o.help) return console.log(helpText("deno task perf [--workload reference] [--peer] [--json]", SPEC));
  if (o.workload !== "reference") throw new UsageError(`unknown --workload '${o.workload}'; use reference`);
  const repeats = numberFlag("repeats", o.repeats, (n) => Number.isInteger(n) && n > 0);
  const steps = numberFlag("steps", o.steps, (n) => Number.isInteger(n) && n > 0);
  const backend = await initBackend(o.backend as BackendName);
  if (!o.json) console.error(describeBackend(backend));
  const w = REFERENCE;
  const config = validateConfig({
    dim: w.dim,
    nLayers: w.layers,
    nHeads: w.heads,
    nKvHeads: w.kvHeads,
    hiddenDim: w.hidden,
    vocabSize: w.vocab,
    maxSeqLen: w.seq,
    ropeStyle: "interleaved",
    tiedEmbeddings: true,
  });
  const rng = new Rng(0);
  const model = LlamaModel.random(config, rng);
  const applied = lora.apply(
    model,
    parseMethodConfig(lora, { rank: w.rank, alpha: 16, targets: "q,v" }),
    plainContext(rng),
  );
  const optimizer = new AdamW(applied.trainable);
  const ids = tf.tensor2d(
    Array.from({ length: w.batch * w.seq }, () => rng.int(w.vocab)),
    [w.batch, w.seq],
    "int32",
  );
  const trainStep = async () => {
    const { value, grads } = tf.variableGrads(() => model.lmLoss(ids).loss, applied.trainable);
    optimizer.apply(applied.trainable.map((v) => grads[v.name]), 1e-3).dispose();
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const inferStep = async () => {
    const logits = tf.tidy(() => model.logits(tf.reshape(model.hidden(ids), [-1, w.dim]) as tf.Tensor2D));
    await logits.data();
    logits.dispose();
  };
  const sgemm256 = await sgemmGflops(256, 10);
  const { products, peakBytes } = await profileStep(trainStep);
  const replay = productsReplay(products);
  const tokens = w.batch * w.seq;
  const fwd = forwardFlopsPerToken();
  // Each round measures the sgemm peaks and the train step back to back, and the shares are
  // medians of per-round ratios: these machines' speed drifts within a run, and a peak measured
  // at a quiet moment against steps timed at a busy one (or the reverse) would skew the share.
  const rounds: { sgemm1024: number; sgemmShapes: number; trainS: number }[] = [];
  for (let i = 0; i < 3; i++) await trainStep(); // warm-up
  for (let r = 0; r < repeats; r++) {
    const sgemm1024 = await sgemmGflops(1024, 1);
    const sgemmShapes = await replay.gflops();
    const trainS = await timeLoop(trainStep, steps, 1, 0);
    rounds.push({ sgemm1024, sgemmShapes, trainS });
  }
  replay.dispose();
  const trainS = median(rounds.map((r) => r.trainS));
  const trainGflops = (s: number) => (2 * fwd * tokens) / s / 1e9;
  const inferS = await timeLoop(inferStep, steps, repeats);
  const result: Record<string, unknown> = {
    backend: `${backend.name} (${backend.detail})`,
    workload: w,
    sgemmGflops1024: median(rounds.map((r) => r.sgemm1024)),
    sgemmGflops256: sgemm256,
    sgemmGflopsTrainShapes: median(rounds.map((r) => r.sgemmShapes)),
    trainMatmuls: products.length,
    trainPeakTensorMiB: peakBytes / 2 ** 20,
    trainStepMs: trainS * 1000,
    trainTokensPerSecond: tokens / trainS,
    inferTokensPerSecond: tokens / inferS,
    trainGflops: trainGflops(trainS),
    inferGflops: (fwd * tokens) / inferS / 1e9,
    trainGflopsOverSgemm: median(rounds.map((r) => trainGflops(r.trainS) / r.sgemm1024)),
    trainGflopsOverSgemmTrainShapes: median(rounds.map((r) => trainGflops(r.trainS) / r.sgemmShapes)),
  };
  if (o.peer) {
    const peer = await runPeer();
    result.peer = peer;
    if (!("error" in peer)) {
      result.trainRatio = (result.trainTokensPerSecond as number) / peer.train_tokens_per_s;
      result.inferRatio = (result.inferTokensPerSecond as number) / peer.infer_tokens_per_s;
    }
  }
  tf.dispose([ids]);
  optimizer.dispose();
  applied.dispose();
  model.dispose();
  if (o.json) return console.log(JSON.stringify(result, null, 2));
  const f = (x: unknown, d = 1) => (typeof x === "number" ? x.toFixed(d) : String(x));
  console.log(`backend                 ${result.backend}`);
  console.log(
    `sgemm GFLOP/s           ${f(result.sgemmGflops1024)} (1024^3), ${f(sgemm256)} (256^3), ${
      f(result.sgemmGflopsTrainShapes)
    } (the train step's ${products.length} products)`,
  );
  console.log(
    `train tokens/s          ${f(result.trainTokensPerSecond, 0)}  (step ${f(result.trainStepMs)} ms)`,
  );
  console.log(`inference tokens/s      ${f(result.inferTokensPerSecond, 0)}`);
  console.log(`train peak tensor MiB   ${f(result.trainPeakTensorMiB)} (tf.profile of one step)`);
  console.log(
    `train GFLOP/s           ${f(result.trainGflops)} = ${
      f(100 * (result.trainGflopsOverSgemm as number))
    }% of sgemm 1024^3, ${
      f(100 * (result.trainGflopsOverSgemmTrainShapes as number))
    }% of sgemm on its shapes`,
  );
  console.log(`inference GFLOP/s       ${f(result.inferGflops)}`);
  if (o.peer) {
    const p = result.peer as Record<string, unknown>;
    if ("error" in p) console.log(`peer                    ${p.error}`);
    else {
      console.log(
        `peer (PyTorch ${p.torch}) train ${p.train_tokens_per_s} tok/s, inference ${p.infer_tokens_per_s} tok/s`,
      );
      console.log(
        `ratio peft-bench/peer   train ${f(result.trainRatio, 2)}, inference ${f(result.inferRatio, 2)}`,
      );
    }
  }
});
