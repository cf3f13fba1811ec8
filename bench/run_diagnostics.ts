/**
 * The diagnostics stage of a run (`--diagnostics`): the attention entropy S(l) of the frozen and
 * the adapted model on the task's first test texts, and each adapted layer's update spectrum,
 * effective rank and entanglement profile.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../models/llama.ts";
import type { AppliedMethod } from "../methods/types.ts";
import { updateDiagnostics } from "../methods/diagnostics/spectrum.ts";
import { entanglementProfile } from "../methods/diagnostics/entanglement.ts";
import {
  type AttentionProbe,
  compareProbes,
  probeAttentionEntropy,
} from "../methods/diagnostics/attention_probe.ts";
import type { TaskRunner } from "./tasks/types.ts";

/** Texts the attention probe reads: the first test items of the task. */
const PROBE_TEXTS = 8;
/** A length enters the attention entropy curve only when at least this many texts reach it. */
const PROBE_MIN_TEXTS = 4;

/** An attention probe's result, or why it could not run. */
export type ProbeResult = AttentionProbe | { error: string };

/**
 * Attention spectral entropy S(l) of the model on the task's first test texts. A probe that
 * cannot run (no texts, texts too short for two lengths) is recorded as its reason rather than
 * failing the run, since the diagnostics are an aside to the benchmark.
 */
export function probeTaskAttention(
  model: LlamaModel,
  task: Pick<TaskRunner, "sampleSequences">,
): ProbeResult {
  const sequences = task.sampleSequences?.(PROBE_TEXTS) ?? [];
  if (sequences.length === 0) return { error: "the task offers no sample texts" };
  try {
    return probeAttentionEntropy(model, sequences, undefined, {
      minSequences: Math.min(PROBE_MIN_TEXTS, sequences.length),
    });
  } catch (err) {
    return { error: (err as Error).message.split("\n")[0] };
  }
}

/**
 * Spectra, effective rank and entanglement profile of each adapted layer's update (methods with
 * deltaWeights), and the attention entropy S(l) of the frozen vs the adapted model with its
 * log-law fits and slope change deltaB (`attention`). `frozenAttention` is the probe taken before
 * the method applied (null: not taken).
 */
export function diagnose(
  model: LlamaModel,
  applied: AppliedMethod,
  task: Pick<TaskRunner, "sampleSequences">,
  frozenAttention: ProbeResult | null,
): Record<string, unknown> {
  const adapted = probeTaskAttention(model, task);
  const attention = !frozenAttention || "error" in frozenAttention
    ? frozenAttention
    : "error" in adapted
    ? adapted
    : compareProbes(frozenAttention, adapted);
  if (!applied.deltaWeights) return { nominalRank: applied.nominalRank ?? null, layers: {}, attention };
  const layers: Record<string, unknown> = {};
  const deltas = applied.deltaWeights();
  for (const [name, dW] of deltas) {
    const shape = dW.shape as [number, number];
    const d = dW.dataSync() as Float32Array;
    const w = tf.tidy(() => model.linear(name).denseWeight().dataSync() as Float32Array);
    const norm = Math.hypot(...d.subarray(0, Math.min(d.length, 4096)));
    const summary = updateDiagnostics(d, w, shape, applied.nominalRank ?? Math.min(...shape));
    const entanglement = norm > 0 ? entanglementProfile(d, shape) : null;
    layers[name] = { ...summary, entanglement };
  }
  tf.dispose([...deltas.values()]);
  return { nominalRank: applied.nominalRank ?? null, layers, attention };
}
