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
 * @module
 */
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { writeSafetensors } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import type { AppliedMethod, NamedArray } from "../methods/types.ts";
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
 * Write the adapter's tensors under `dir` (created), each file atomically; with a classification
 * head (see {@link sequenceHeadOf}) the PEFT export is a SEQ_CLS one carrying it.
 */
export async function saveAdapter(
  dir: string,
  applied: Pick<AppliedMethod, "state" | "peftExport">,
  head?: SequenceHead,
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
  const notes: string[] = [];
  if (refused) {
    console.error(`PEFT export not written: ${refused}`);
    notes.push(`No PEFT files: ${refused}.`);
  } else {
    if (head) {
      config.task_type = "SEQ_CLS";
      config.modules_to_save = [...((config.modules_to_save as string[] | null) ?? []), "score"];
      tensors.set("base_model.model.score.weight", head.weight);
      const gaps = headGaps(head);
      if (gaps.length > 0) {
        notes.push("PEFT's SEQ_CLS model does not reproduce this run's classifier exactly; missing:");
        notes.push(...gaps.map((g) => `- ${g}.`));
      }
    }
    await writeFileAtomic(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
    await writeFileAtomic(join(dir, "adapter_model.safetensors"), writeSafetensors(tensors));
  }
  if (notes.length > 0) {
    await writeFileAtomic(join(dir, "README.md"), `# PEFT export notes\n\n${notes.join("\n")}\n`);
  }
}
