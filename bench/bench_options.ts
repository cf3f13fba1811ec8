/**
 * Every flag of `bench`, with its help line and default; `sweep` shares them for its fixed options.
 * @module
 */
import type { OptionSpec } from "../models/util/args.ts";
import { BACKEND_NAMES } from "../models/backend.ts";
import { quantHelp } from "../methods/quant/schemes.ts";

/** Every flag of `bench` (shared with `sweep` for fixed options). */
export const BENCH_SPEC = {
  method: { type: "string", default: "lora", help: "PEFT method (see --list-methods)" },
  rank: { type: "string", help: "adapter rank (LoRA family)" },
  alpha: { type: "string", help: "adapter scaling numerator alpha" },
  targets: {
    type: "string",
    help: "target layers: q+v, q+k+v, q+k+v+o, attn, mlp, all-linear, q,v,down or re:PATTERN",
  },
  opt: {
    type: "string",
    multiple: true,
    help: "method option KEY=VALUE (repeatable), e.g. --opt bottleneck=16",
  },
  quant: {
    type: "string",
    default: "none",
    help: quantHelp(),
  },
  "quant-opt": {
    type: "string",
    multiple: true,
    help:
      "quantization option KEY=VALUE (repeatable): outlierThreshold=6, actOrder=true, damping=0.01, calibrationItems=32",
  },
  "double-quant": {
    type: "boolean",
    default: false,
    help: "quantize the 4-bit schemes' block constants (QLoRA)",
  },
  "block-size": {
    type: "string",
    help: "quantization block / group size (4-bit, hqq, gptq; default 64, gptq 128)",
  },
  loftq: {
    type: "string",
    default: "0",
    help: "LoftQ initialisation iterations for lora/rslora on a quantized base (0: off)",
  },
  task: { type: "string", help: "classify|retrieve|lm (default: the dataset's task)" },
  dataset: { type: "string", default: "wordnet-lex", help: "dataset (see --list-datasets)" },
  model: {
    type: "string",
    default: "default",
    help: "model: 'default' (embedded), a Hugging Face folder or llama2.c .bin",
  },
  tokenizer: {
    type: "string",
    help: "tokenizer of --model: a tokenizer.json, llama2.c .bin or a folder (default: the model's own)",
  },
  "forgetting-text": {
    type: "string",
    help:
      "UTF-8 text file whose NLL before and after training measures forgetting (default: held-out SOTU prose)",
  },
  "data-opt": {
    type: "string",
    multiple: true,
    help: "dataset option KEY=VALUE (repeatable), e.g. --data-opt labelColumn=topic (see --list-datasets)",
  },
  "train-size": {
    type: "string",
    help: "training examples, a nested seeded subset (default 512; retrieve, lm)",
  },
  "train-per-class": { type: "string", help: "training examples per class (default 32; classify)" },
  "split-seed": { type: "string", default: "0", help: "seed of the dataset's train-subset order" },
  epochs: { type: "string", default: "3", help: "passes over the training set" },
  steps: { type: "string", help: "optimizer updates (overrides --epochs)" },
  "batch-size": { type: "string", default: "16", help: "examples per micro-batch" },
  "grad-accum": { type: "string", default: "1", help: "micro-batches per update" },
  lr: {
    type: "string",
    help: "peak learning rate of the method's parameters (default 0.002, or the method's own)",
  },
  "head-lr": { type: "string", default: "0.005", help: "peak learning rate of the task head" },
  warmup: { type: "string", default: "0.1", help: "warmup fraction of the updates" },
  schedule: { type: "string", default: "cosine", help: "learning-rate decay: cosine|linear|constant" },
  "weight-decay": { type: "string", default: "0", help: "AdamW decoupled weight decay" },
  clip: { type: "string", default: "1", help: "global gradient-norm clipping (0: off)" },
  "max-length": { type: "string", default: "48", help: "tokens per text (truncation; LM row length)" },
  pooling: { type: "string", default: "mean", help: "sentence pooling: mean|last" },
  temperature: { type: "string", default: "0.05", help: "InfoNCE temperature (retrieve)" },
  "eval-every": { type: "string", default: "0", help: "evaluate on dev every N updates (0: never)" },
  "max-eval": { type: "string", help: "evaluate on at most N items" },
  "max-eval-mode": {
    type: "string",
    help:
      "which --max-eval items a classification run scores: first (default) or stratified (seeded, per class)",
  },
  "max-corpus": {
    type: "string",
    default: "2000",
    help: "retrieval: documents ranked per query (judged + fixed distractors)",
  },
  seed: { type: "string", default: "0", help: "seed, or several: 0,1,2 (integers 0..4294967295)" },
  backend: { type: "string", default: "auto", help: `compute backend: ${BACKEND_NAMES.join("|")}` },
  out: { type: "string", default: "results", help: "folder for run records" },
  diagnostics: {
    type: "boolean",
    default: false,
    help: "record weight-update spectra and entanglement profiles",
  },
  "grad-checkpoint": {
    type: "boolean",
    default: false,
    help:
      "activation checkpointing: recompute each decoder layer in the backward pass (activation memory of one layer)",
  },
  "save-adapter": { type: "boolean", default: false, help: "save adapters under OUT/adapters/RUN_ID/" },
  "repeat-check": {
    type: "boolean",
    default: false,
    help: "run twice and report whether metrics are bit-identical",
  },
  "list-methods": { type: "boolean", default: false, help: "list methods and exit" },
  "list-datasets": { type: "boolean", default: false, help: "list datasets and exit" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;
