/**
 * `deno task perf [--workload reference|default|NAME] [--backend B] [--repeats N] [--peer] [--json]
 * [--quant SCHEME [--double-quant]]`: the performance benchmark (not a test). With `--quant` the
 * frozen base's decoder linears are packed first (QLoRA; calibration-free schemes).
 *
 * The reference workload (the one `scripts/peer/torch_llama_lora.py` runs in PyTorch):
 * Llama-family decoder, dim 128, 4 layers, 4 heads, 2 KV heads, SwiGLU 384, vocabulary 4096,
 * batch 16 x 64 tokens, LoRA rank 8 (alpha 16) on q and v through peft-bench's own LoRA module,
 * AdamW; a train step (forward, backward, update) and a frozen inference forward with logits.
 * `default` is the embedded model `deno task bench` trains by default (batch 16 x 64, LoRA r8 on q
 * and v), the figure its evaluation throughput is compared with. A named workload (`qwen3-0.6b`, `qwen2.5-1.5b`, ... as `deno task make-model` names them) is that
 * model's published shape with `make-model`'s seed-0 random weights, built in memory with its frozen
 * base in bfloat16 outside the tfjs heap (native backend only), batch 4 x 128, LoRA r16 (alpha 32)
 * on q, k, v and o, activation checkpointing per layer (`--grad-checkpoint`); the peer gets the same
 * shapes as flags (and keeps its activations: PyTorch has no 4 GiB heap).
 *
 * Counted FLOPs follow the peer's formula for the forward pass (matmuls only, Q = heads x headDim):
 * 2 (L (2 Q D + 2 kvDim D + 3 F D) + V D) + 4 L T Q per token. A LoRA train step counts
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
import { countParameters, type LlamaConfig, validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { configFromHf } from "../models/hf.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { NAMED_MODELS, namedModel } from "../models/named_models.ts";
import { randomStoredWeights } from "../models/random_weights.ts";
import { storedKernelsActive } from "../models/offheap_linear.ts";
import { Rng } from "../models/util/rng.ts";
import { AdamW } from "../methods/optim.ts";
import { lora } from "../methods/lora.ts";
import { parseMethodConfig } from "../methods/registry.ts";
import { plainContext } from "../methods/common.ts";
import { matMulMs } from "../bench/env.ts";
import { median } from "../models/util/numeric.ts";
import { BENCH_SPEC } from "../bench/bench_options.ts";
import { quantFromFlags } from "../bench/config.ts";
import { resolveQuant } from "../bench/run_resolve.ts";
import { frozenFootprint, quantizeDecoder } from "../bench/frozen_base.ts";
import { schemeModule } from "../methods/quant/schemes.ts";
import { runQuant } from "../bench/factors.ts";

const WORKLOADS = ["reference", "default", ...Object.keys(NAMED_MODELS)];

const SPEC = {
  workload: { type: "string", default: "reference", help: `workload: ${WORKLOADS.join(" | ")}` },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  repeats: { type: "string", default: "5", help: "measurements per figure (median reported)" },
  steps: { type: "string", default: "10", help: "timed steps per measurement" },
  peer: { type: "boolean", default: false, help: "also run the PyTorch peer (needs python3-torch)" },
  "peer-dtype": {
    type: "string",
    default: "float32",
    help: "the peer's frozen weights: float32 | bfloat16 (with bf16 autocast)",
  },
  quant: BENCH_SPEC.quant,
  "double-quant": BENCH_SPEC["double-quant"],
  "block-size": BENCH_SPEC["block-size"],
  "quant-opt": BENCH_SPEC["quant-opt"],
  json: { type: "boolean", default: false, help: "print JSON" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** A workload's shapes: the model's, the batch and the LoRA rank. */
export interface Workload {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  vocab: number;
  seq: number;
  batch: number;
  rank: number;
  alpha: number;
  targets: string;
}

/** The reference workload's shapes. */
export const REFERENCE: Workload = {
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  headDim: 32,
  hidden: 384,
  vocab: 4096,
  seq: 64,
  batch: 16,
  rank: 8,
  alpha: 16,
  targets: "q,v",
};

/**
 * The embedded default model's workload, what `deno task bench` trains by default: its shapes,
 * batch 16 x 64, LoRA r8 (alpha 16) on q and v.
 */
export function defaultWorkload(config: LlamaConfig): Workload {
  return { ...namedWorkload(config), seq: 64, batch: 16, rank: 8, alpha: 16, targets: "q,v" };
}

/** A named model's workload: its shapes, batch 4 x 128, LoRA r16 (alpha 32) on q, k, v and o. */
export function namedWorkload(config: LlamaConfig): Workload {
  return {
    dim: config.dim,
    layers: config.nLayers,
    heads: config.nHeads,
    kvHeads: config.nKvHeads,
    headDim: config.headDim,
    hidden: config.hiddenDim,
    vocab: config.vocabSize,
    seq: 128,
    batch: 4,
    rank: 16,
    alpha: 32,
    targets: "q,k,v,o",
  };
}

/** Forward FLOPs per token of a workload's model, by the peer's formula. */
export function forwardFlopsPerToken(w: Workload = REFERENCE): number {
  const q = w.heads * w.headDim;
  const perLayer = 2 * q * w.dim + 2 * w.kvHeads * w.headDim * w.dim + 3 * w.hidden * w.dim;
  return 2 * (w.layers * perLayer + w.vocab * w.dim) + w.layers * 4 * w.seq * q;
}

/** The peer's flags for a workload on `config` (its norms, RoPE and biases). */
export function peerArgs(w: Workload, config: LlamaConfig, dtype: string): string[] {
  const flags: [string, number | string][] = [
    ["dim", w.dim],
    ["layers", w.layers],
    ["heads", w.heads],
    ["kv-heads", w.kvHeads],
    ["head-dim", w.headDim],
    ["hidden", w.hidden],
    ["vocab", w.vocab],
    ["seq", w.seq],
    ["batch", w.batch],
    ["rank", w.rank],
    ["alpha", w.alpha],
    ["targets", w.targets],
    ["norm-eps", config.normEps],
    ["rope-theta", config.ropeTheta],
    ["rope-style", config.ropeStyle],
    ["dtype", dtype],
  ];
  return [
    ...flags.flatMap(([k, v]) => [`--${k}`, String(v)]),
    ...(config.qkNorm ? ["--qk-norm"] : []),
    ...(config.qkvBias ? ["--qkv-bias"] : []),
  ];
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

async function runPeer(args: string[]): Promise<Record<string, number> | { error: string }> {
  const script = fileURLToPath(new URL("./peer/torch_llama_lora.py", import.meta.url));
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--threads", "2", ...args],
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

/**
 * The seeded model of a workload: the reference decoder in the heap (drawn from `rng`), or a named
 * model's published shapes with make-model's seed-0 weights, frozen base in bf16 off the heap.
 */
async function buildModel(
  workload: string,
  rng: Rng,
): Promise<{ model: LlamaModel; config: LlamaConfig; w: Workload }> {
  if (workload === "reference") {
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
    return { model: LlamaModel.random(config, rng), config, w };
  }
  if (workload === "default") {
    const { model } = await loadModel(DEFAULT_MODEL_DIR);
    return { model, config: model.config, w: defaultWorkload(model.config) };
  }
  if (!storedKernelsActive()) {
    throw new UsageError(
      `--workload ${workload} keeps its frozen base outside the tfjs heap, which needs the native backend: ` +
        "use --backend native (after deno task build-native)",
    );
  }
  const config = configFromHf(namedModel(workload).config, `${workload} config`);
  const model = LlamaModel.fromWeights(
    config,
    randomStoredWeights(config, new Rng(0)),
    `synthetic ${workload}`,
  );
  // tfjs holds every intermediate gradient until the backward pass ends: without checkpointing a
  // 0.6B step at 4 x 128 tokens passes the 4 GiB heap (peak tensor bytes 2 GiB at 1 x 128).
  model.gradCheckpoint = true;
  return { model, config, w: namedWorkload(config) };
}

if (import.meta.main) {
  await runMain(async () => {
    const { values: o } = parseCli(Deno.args, SPEC);
    if (o.help) {
      return console.log(helpText("deno task perf [--workload reference|NAME] [--peer] [--json]", SPEC));
    }
    if (!WORKLOADS.includes(o.workload)) {
      throw new UsageError(`unknown --workload '${o.workload}'; use ${WORKLOADS.join(", ")}`);
    }
    if (!["float32", "bfloat16"].includes(o["peer-dtype"])) {
      throw new UsageError(`--peer-dtype: invalid value '${o["peer-dtype"]}'; use float32 or bfloat16`);
    }
    const quantFlags = quantFromFlags(o);
    const quant = resolveQuant(quantFlags);
    if (quant && schemeModule(quant.scheme).needsCalibration) {
      throw new UsageError(
        `--quant ${quant.scheme} quantizes against recorded activations, which perf's random tokens are not: ` +
          `time it with deno task bench --quant ${quant.scheme}`,
      );
    }
    if (quant && o.peer) {
      throw new UsageError("--peer runs an unquantized PyTorch base: drop --peer or --quant");
    }
    const repeats = numberFlag("repeats", o.repeats, (n) => Number.isInteger(n) && n > 0);
    const steps = numberFlag("steps", o.steps, (n) => Number.isInteger(n) && n > 0);
    const backend = await initBackend(o.backend as BackendName);
    if (!o.json) console.error(describeBackend(backend));
    const rng = new Rng(0);
    const { model, config, w } = await buildModel(o.workload, rng);
    // QLoRA: the frozen base's decoder linears packed before LoRA wraps them.
    if (quant) quantizeDecoder(model, quant);
    const applied = lora.apply(
      model,
      parseMethodConfig(lora, { rank: w.rank, alpha: w.alpha, targets: w.targets }),
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
    const tokens = w.batch * w.seq;
    const fwd = forwardFlopsPerToken(w);
    const trainGflops = (s: number) => (2 * fwd * tokens) / s / 1e9;
    const result: Record<string, unknown> = {
      backend: `${backend.name} (${backend.detail})`,
      workload: o.workload,
      quant: runQuant({ quant: quantFlags }),
      shapes: w,
      frozenMiB: frozenFootprint(model, new Set(applied.trainable)).bytes / 2 ** 20,
    };
    // The small in-heap models get the sgemm comparison; real sizes the memory figures.
    const small = o.workload === "reference" || o.workload === "default";
    Object.assign(result, small ? await measureSmall() : await measureNamed());
    if (o.peer) {
      const peer = await runPeer([
        ...peerArgs(w, config, o["peer-dtype"]),
        ...(small ? [] : ["--steps", String(steps), "--warmup", "1"]),
      ]);
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
    printResult(result, o.peer);

    /**
     * A small workload (reference, default): rounds of the sgemm peaks and the train step back to back, and the
     * train step's share of each peak.
     */
    async function measureSmall(): Promise<Record<string, unknown>> {
      const sgemm256 = await sgemmGflops(256, 10);
      const { products, peakBytes } = await profileStep(trainStep);
      const replay = productsReplay(products);
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
      const inferS = await timeLoop(inferStep, steps, repeats);
      return {
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
    }

    /**
     * A named (real-size) workload: one profiled step (heap peak, and the warm-up), then the timed
     * train and inference steps; memory in and out of the heap, and the process RSS after them.
     */
    async function measureNamed(): Promise<Record<string, unknown>> {
      const { peakBytes } = await profileStep(trainStep);
      const trainS = await timeLoop(trainStep, steps, repeats, 0);
      const inferS = await timeLoop(inferStep, steps, repeats, 1);
      return {
        model: namedModel(o.workload).hubId,
        gradCheckpoint: model.gradCheckpoint,
        parameters: countParameters(config),
        trainPeakTensorMiB: peakBytes / 2 ** 20,
        rssMiB: Deno.memoryUsage().rss / 2 ** 20,
        sgemmGflops1024: await sgemmGflops(1024, 3),
        trainStepMs: trainS * 1000,
        trainTokensPerSecond: tokens / trainS,
        inferTokensPerSecond: tokens / inferS,
        trainGflops: trainGflops(trainS),
        inferGflops: (fwd * tokens) / inferS / 1e9,
      };
    }
  });
}

/** The human-readable table of a perf result. */
function printResult(result: Record<string, unknown>, peer: boolean): void {
  const f = (x: unknown, d = 1) => (typeof x === "number" ? x.toFixed(d) : String(x));
  console.log(`backend                 ${result.backend}`);
  const shapes = result.model ? ` (${result.model} shapes, activation checkpointing)` : "";
  console.log(`workload                ${result.workload}${shapes}`);
  console.log(`frozen base quant       ${result.quant}`);
  if (result.sgemmGflopsTrainShapes !== undefined) {
    console.log(
      `sgemm GFLOP/s           ${f(result.sgemmGflops1024)} (1024^3), ${f(result.sgemmGflops256)} (256^3), ${
        f(result.sgemmGflopsTrainShapes)
      } (the train step's ${result.trainMatmuls} products)`,
    );
  } else console.log(`sgemm GFLOP/s           ${f(result.sgemmGflops1024)} (1024^3)`);
  console.log(
    `train tokens/s          ${f(result.trainTokensPerSecond, 0)}  (step ${f(result.trainStepMs)} ms)`,
  );
  console.log(`inference tokens/s      ${f(result.inferTokensPerSecond, 0)}`);
  console.log(`train peak tensor MiB   ${f(result.trainPeakTensorMiB)} (tf.profile of one step)`);
  console.log(`frozen base MiB         ${f(result.frozenMiB)} (stored precision, or packed codes)`);
  if (result.rssMiB !== undefined) {
    console.log(`RSS MiB                 ${f(result.rssMiB)} (after the timed steps)`);
  }
  if (result.trainGflopsOverSgemm !== undefined) {
    console.log(
      `train GFLOP/s           ${f(result.trainGflops)} = ${
        f(100 * (result.trainGflopsOverSgemm as number))
      }% of sgemm 1024^3, ${
        f(100 * (result.trainGflopsOverSgemmTrainShapes as number))
      }% of sgemm on its shapes`,
    );
  } else console.log(`train GFLOP/s           ${f(result.trainGflops)}`);
  console.log(`inference GFLOP/s       ${f(result.inferGflops)}`);
  if (peer) {
    const p = result.peer as Record<string, unknown>;
    if ("error" in p) console.log(`peer                    ${p.error}`);
    else {
      console.log(
        `peer (PyTorch ${p.torch}, ${p.dtype}) train ${p.train_tokens_per_s} tok/s, inference ${p.infer_tokens_per_s} tok/s`,
      );
      console.log(
        `ratio peft-bench/peer   train ${f(result.trainRatio, 2)}, inference ${f(result.inferRatio, 2)}`,
      );
    }
  }
}
