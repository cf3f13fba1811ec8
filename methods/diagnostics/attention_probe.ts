/**
 * Measures a model's attention spectral entropy S(l) at several sequence lengths l through the
 * `attentionProbs` hook, per layer and overall, and fits S(l) = a + b ln l to each curve.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../../models/llama.ts";
import { attentionSpectralEntropy, fitLogLaw, type LogFit } from "./attention_entropy.ts";

/** An entropy curve over sequence lengths and its log-law fit. */
export interface EntropyFitCurve {
  /** Sequence lengths, ascending. */
  lengths: number[];
  /** entropy[i] = mean spectral entropy (nats) at lengths[i]. */
  entropy: number[];
  /** Least-squares S(l) = a + b ln l over the points. */
  fit: LogFit;
}

/** One decoder layer's curve, averaged over heads and sequences. */
export interface LayerAttentionEntropy extends EntropyFitCurve {
  layer: number;
}

/** Result of {@link probeAttentionEntropy}. */
export interface AttentionProbe {
  /** One curve per decoder layer, in layer order. */
  perLayer: LayerAttentionEntropy[];
  /** The mean of the layer curves at each length (every layer has the same heads and sequences). */
  overall: EntropyFitCurve;
  /** sequences[i] = how many of the given sequences were long enough for lengths[i]. */
  sequences: number[];
}

/**
 * Lengths to probe up to `maxLength`: 4, 8, 16, 24, 32, 48, 64, 96, 128, roughly even in ln l
 * (the fit's variable) and capped at 128 so the per-head eigensolves stay cheap.
 */
export function probeLengths(maxLength: number): number[] {
  return [4, 8, 16, 24, 32, 48, 64, 96, 128].filter((l) => l <= maxLength);
}

/**
 * Spectral entropy of every layer's attention on `sequences` truncated to each of `lengths`.
 * At length l every sequence with at least l tokens takes part (the rest are skipped, and a
 * length fewer than `options.minSequences` (default 1) sequences reach is dropped); each [l, l] attention matrix of each head and
 * sequence gives one entropy (see attentionSpectralEntropy), averaged per layer.
 * With a soft prompt or key/value prefix the matrix is wider than l: the probe keeps the block
 * of the l real tokens attending to each other and renormalises its rows, i.e. the attention
 * among the text's own tokens given that they are attended to.
 * The hook is removed again (and any previous one restored) even when the forward pass throws.
 * Throws on a length beyond the model's context or fewer than two usable lengths (no fit).
 * `lengths` defaults to {@link probeLengths} up to the context or the longest sequence.
 */
export function probeAttentionEntropy(
  model: LlamaModel,
  sequences: number[][],
  lengths: number[] = probeLengths(
    Math.min(model.config.maxSeqLen, sequences.reduce((m, s) => Math.max(m, s.length), 0)),
  ),
  options: { minSequences?: number } = {},
): AttentionProbe {
  const minSequences = Math.max(1, options.minSequences ?? 1);
  const nLayers = model.config.nLayers;
  const sorted = [...new Set(lengths)].sort((x, y) => x - y);
  for (const l of sorted) {
    if (!Number.isInteger(l) || l < 1 || l > model.config.maxSeqLen) {
      throw new Error(`probe length ${l} is not an integer in [1, ${model.config.maxSeqLen}]`);
    }
  }
  const used: number[] = [];
  const counts: number[] = [];
  // sums[layer][i]: sum of entropies over heads and sequences at used[i]; n[i] how many.
  const sums: number[][] = Array.from({ length: nLayers }, () => []);
  const n: number[][] = Array.from({ length: nLayers }, () => []);
  const previous = model.hooks.attentionProbs;
  try {
    for (const l of sorted) {
      const batch = sequences.filter((s) => s.length >= l).map((s) => s.slice(0, l));
      if (batch.length < minSequences) continue;
      const i = used.length;
      used.push(l);
      counts.push(batch.length);
      for (let layer = 0; layer < nLayers; layer++) {
        sums[layer][i] = 0;
        n[layer][i] = 0;
      }
      model.hooks.attentionProbs = (layer, probs) => {
        const [b, h, tq, tk] = probs.shape;
        // The hook frees probs after the call, so it is read here, synchronously.
        const data = probs.dataSync();
        const m = new Float64Array(l * l);
        for (let s = 0; s < b * h; s++) {
          const base = s * tq * tk;
          for (let r = 0; r < l; r++) {
            const row = base + (tq - l + r) * tk + (tk - l);
            let sum = 0;
            for (let c = 0; c < l; c++) sum += data[row + c];
            for (let c = 0; c < l; c++) m[r * l + c] = data[row + c] / sum;
          }
          sums[layer][i] += attentionSpectralEntropy(m, l);
          n[layer][i]++;
        }
        previous?.(layer, probs);
      };
      const ids = tf.tensor2d(batch.flat(), [batch.length, l], "int32");
      try {
        model.hidden(ids).dispose();
      } finally {
        ids.dispose();
      }
      for (let layer = 0; layer < nLayers; layer++) {
        if (n[layer][i] === 0) throw new Error(`layer ${layer} reported no attention at length ${l}`);
      }
    }
  } finally {
    if (previous) model.hooks.attentionProbs = previous;
    else delete model.hooks.attentionProbs;
  }
  if (used.length < 2) {
    throw new Error(
      `attention probe needs two lengths that ${minSequences} sequence(s) reach; got ${used.length} (lengths ${
        sorted.join(", ")
      }, longest sequence ${sequences.reduce((m, s) => Math.max(m, s.length), 0)})`,
    );
  }
  const perLayer = sums.map((row, layer) => {
    const entropy = row.map((s, i) => s / n[layer][i]);
    return { layer, lengths: used, entropy, fit: fitLogLaw(used, entropy) };
  });
  const overall = used.map((_, i) => perLayer.reduce((s, c) => s + c.entropy[i], 0) / nLayers);
  return {
    perLayer,
    overall: { lengths: used, entropy: overall, fit: fitLogLaw(used, overall) },
    sequences: counts,
  };
}

/**
 * A frozen and an adapted model's probes side by side, with deltaB = b_adapted - b_frozen of the
 * overall fits (as compareAttentionEntropy defines it) and per layer.
 */
export function compareProbes(
  frozen: AttentionProbe,
  adapted: AttentionProbe,
): { frozen: AttentionProbe; adapted: AttentionProbe; deltaB: number; deltaBPerLayer: number[] } {
  return {
    frozen,
    adapted,
    deltaB: adapted.overall.fit.b - frozen.overall.fit.b,
    deltaBPerLayer: adapted.perLayer.map((c, i) => c.fit.b - (frozen.perLayer[i]?.fit.b ?? NaN)),
  };
}
