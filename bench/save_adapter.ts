/**
 * The adapter-saving stage of a run (`--save-adapter`): the method's own tensors as safetensors,
 * and the Hugging Face PEFT layout (`adapter_config.json` + `adapter_model.safetensors`) where
 * the method exports one.
 *
 * Classification runs train a linear head beside the adapter. PEFT saves a sequence-classification
 * head as `modules_to_save: ["score"]` with `task_type: "SEQ_CLS"` (utils/other.py
 * `ModulesToSaveWrapper`; utils/save_and_load.py stores the trained copy as
 * `base_model.model.score.weight`), and so does this stage. What `LlamaForSequenceClassification`
 * cannot express is written down in the folder's `README.md` instead of being dropped silently: its
 * `score` has no bias (ours is trained; both tensors are also in `head.safetensors`), and it scores
 * the last non-padding token's hidden state (`--pooling last`), not their mean.
 *
 * When the method refuses the export (`PeftExport.refused`: no PEFT adapter on the original base
 * reproduces the run, e.g. `--loftq`), the PEFT files are not written; `README.md` gives the reason
 * and one line goes to stderr.
 *
 * A run on a quantized base (`--quant`) trained its adapter against the dequantized weights, so
 * PEFT computes the run's function only on a base quantized the same way: `README.md` names the
 * scheme, block size and double quantization, and the bitsandbytes / transformers settings that
 * match where one exists ({@link quantNotes}). A BOFT export with more than one butterfly factor
 * says that PEFT needs its CUDA extension for it ({@link exportSetupNotes}).
 * @module
 */
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { writeSafetensors } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import type { AppliedMethod, NamedArray } from "../methods/types.ts";
import { validateQuantConfig } from "../methods/quant/config.ts";
import type { RunConfig } from "./record.ts";
import type { TaskRunner } from "./tasks/types.ts";

/** A classification run's trained head: logits = weight · pooled + bias. */
export interface SequenceHead {
  /** [classes, hidden]. */
  weight: NamedArray;
  /** [classes]. */
  bias: NamedArray;
  /** How the run pooled the final hidden states. */
  pooling: RunConfig["pooling"];
}

/**
 * The head of a classification run (the classify task's `headVariables`: weight [classes, dim]
 * and bias [classes], in that order), or undefined for other tasks.
 */
export function sequenceHeadOf(
  task: Pick<TaskRunner, "headVariables">,
  config: Pick<RunConfig, "task" | "pooling">,
): SequenceHead | undefined {
  if (config.task !== "classify") return undefined;
  const [w, b] = task.headVariables as [tf.Variable, tf.Variable];
  return {
    weight: { data: w.dataSync() as Float32Array, shape: [...w.shape] },
    bias: { data: b.dataSync() as Float32Array, shape: [...b.shape] },
    pooling: config.pooling,
  };
}

/** What a PEFT `LlamaForSequenceClassification` would compute differently from the run's head. */
export function headGaps(head: SequenceHead): string[] {
  const gaps: string[] = [];
  if (head.bias.data.some((x) => x !== 0)) {
    gaps.push(
      "the head's bias: Hugging Face's `score` is a Linear without bias, so PEFT applies only " +
        "`score.weight`; add the bias (`score.bias` in head.safetensors) to its logits to get the run's",
    );
  }
  if (head.pooling !== "last") {
    gaps.push(
      `pooling: the run pooled the ${head.pooling} of the final hidden states, while ` +
        "LlamaForSequenceClassification scores the last non-padding token's; train with --pooling last " +
        "for an export PEFT reproduces",
    );
  }
  return gaps;
}

/**
 * What PEFT's base must be for an export of a run on a quantized base (`quant` as the run config
 * holds it; none for `scheme: "none"`): the run's adapter was fitted to the dequantized weights.
 * bitsandbytes' 4-bit layers (`Params4bit`) use blocks of 64 and, with double quantization
 * (`compress_statistics`), 8-bit block constants in blocks of 256, as `--double-quant`; transformers'
 * `BitsAndBytesConfig` has no block-size option.
 */
export function quantNotes(quant: RunConfig["quant"] | undefined): string[] {
  if (!quant || quant.scheme === "none") return [];
  const q = validateQuantConfig(quant);
  const block = ["int4", "nf4", "fp4"].includes(q.scheme) || /^(hqq|gptq)/.test(q.scheme);
  const flags = [`--quant ${q.scheme}`];
  if (block) flags.push(`--block-size ${q.blockSize}`);
  if (q.doubleQuant) flags.push("--double-quant");
  const what = [`scheme ${q.scheme}`];
  if (block) what.push(`block size ${q.blockSize}`);
  if (["int4", "nf4", "fp4"].includes(q.scheme)) {
    what.push(
      q.doubleQuant
        ? "double quantization on (block constants in 8 bits, blocks of 256)"
        : "no double quantization",
    );
  }
  const notes = [
    `The run's base was quantized (\`${flags.join(" ")}\`) and the adapter was trained against its ` +
    "dequantized weights: PEFT computes the run's function only on a base quantized the same way " +
    `(${what.join(", ")}); on the full-precision base it computes another function.`,
  ];
  if (q.scheme === "nf4" || q.scheme === "fp4") {
    const bnb = `\`BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="${q.scheme}", ` +
      `bnb_4bit_use_double_quant=${
        q.doubleQuant ? "True" : "False"
      }, bnb_4bit_compute_dtype=torch.float32)\``;
    notes.push(
      q.blockSize === 64
        ? `- With transformers and bitsandbytes: ${bnb} (bitsandbytes' 4-bit block size is 64, as this run's).`
        : `- bitsandbytes through transformers (${bnb}) always uses blocks of 64, not this run's ` +
          `${q.blockSize}: quantize each linear weight with \`bitsandbytes.functional.quantize_4bit(W, ` +
          `blocksize=${q.blockSize}, quant_type="${q.scheme}", compress_statistics=${
            q.doubleQuant ? "True" : "False"
          })\` ` +
          "and dequantize it, or train with --block-size 64.",
    );
  } else if (q.scheme === "llm-int8") {
    notes.push(
      `- With transformers and bitsandbytes: \`BitsAndBytesConfig(load_in_8bit=True, ` +
        `llm_int8_threshold=${q.outlierThreshold})\`.`,
    );
  } else if (q.scheme === "fp16" || q.scheme === "bf16") {
    const dtype = q.scheme === "fp16" ? "float16" : "bfloat16";
    notes.push(
      `- Load the base with \`torch_dtype=torch.${dtype}\` (weights rounded as this run's) and compute in ` +
        "float32 as the run did (`model.float()` after loading keeps the rounded values).",
    );
  } else if (q.scheme.startsWith("hqq")) {
    notes.push(
      `- mobiusml/hqq with nbits ${q.scheme.slice(3)}, group_size ${q.blockSize}, axis 1 and its default ` +
        "proximal optimiser (`optimize_weights_proximal`, which this scheme follows).",
    );
  } else if (q.scheme.startsWith("gptq")) {
    notes.push(
      "- GPTQ's codes depend on this run's calibration sample (and --quant-opt actOrder, damping), " +
        "which the export does not carry: a GPTQ base quantized on other data is another base.",
    );
  } else {
    notes.push(
      `- No transformers loader stores weights as ${q.scheme} does (methods/quant/schemes/): round each ` +
        "linear weight of the base through that scheme before loading the adapter.",
    );
  }
  return notes;
}

/**
 * How PEFT must be set up to build the exported adapter at all: BOFT with more than one butterfly
 * factor needs PEFT's fbd CUDA extension (boft/layer.py `update_layer` resets
 * `boft_n_butterfly_factor` to 1 without it, so `boft_R` [factors, ...] no longer fits).
 */
export function exportSetupNotes(config: Record<string, unknown>): string[] {
  if (config.peft_type === "BOFT" && (config.boft_n_butterfly_factor as number) > 1) {
    return [
      `PEFT builds BOFT with ${config.boft_n_butterfly_factor} butterfly factors only with its CUDA ` +
      "extension (fbd_cuda, on a GPU); without it PEFT falls back to one factor and cannot load " +
      "boft_R. Train with --opt nButterflyFactor=1 for an export any PEFT install loads.",
    ];
  }
  return [];
}

/**
 * Write the adapter's tensors under `dir` (created), each file atomically; with a classification
 * head (see {@link sequenceHeadOf}) the PEFT export is a SEQ_CLS one carrying it; with the run's
 * `quant` (a quantized base) `README.md` says how PEFT's base must be quantized ({@link quantNotes}).
 */
export async function saveAdapter(
  dir: string,
  applied: Pick<AppliedMethod, "state" | "peftExport">,
  head?: SequenceHead,
  quant?: RunConfig["quant"],
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, "adapter.safetensors"), writeSafetensors(applied.state()));
  if (head) {
    await writeFileAtomic(
      join(dir, "head.safetensors"),
      writeSafetensors(new Map([["score.weight", head.weight], ["score.bias", head.bias]])),
    );
  }
  if (!applied.peftExport) return;
  const { config, tensors, refused } = applied.peftExport();
  // README sections (paragraphs, or a line and its list), separated by blank lines.
  const notes: string[] = [];
  if (refused) {
    console.error(`PEFT export not written: ${refused}`);
    notes.push(`No PEFT files: ${refused}.`);
  } else {
    const quantLines = quantNotes(quant);
    if (quantLines.length > 0) notes.push(quantLines.join("\n"));
    notes.push(...exportSetupNotes(config));
    if (head) {
      config.task_type = "SEQ_CLS";
      config.modules_to_save = [...((config.modules_to_save as string[] | null) ?? []), "score"];
      tensors.set("base_model.model.score.weight", head.weight);
      const gaps = headGaps(head);
      if (gaps.length > 0) {
        notes.push(
          ["PEFT's SEQ_CLS model does not reproduce this run's classifier exactly; missing:"]
            .concat(gaps.map((g) => `- ${g}.`)).join("\n"),
        );
      }
    }
    await writeFileAtomic(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
    await writeFileAtomic(join(dir, "adapter_model.safetensors"), writeSafetensors(tensors));
  }
  if (notes.length > 0) {
    await writeFileAtomic(join(dir, "README.md"), `# PEFT export notes\n\n${notes.join("\n\n")}\n`);
  }
}
