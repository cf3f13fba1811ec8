/**
 * Text generation: greedy decoding and seeded top-k sampling.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "./llama.ts";
import type { Rng } from "./util/rng.ts";

/** How to pick each next token. */
export interface GenerateOptions {
  /** Maximum number of tokens to add. */
  maxNewTokens: number;
  /** `greedy` (argmax) or `top-k` sampling. */
  strategy?: "greedy" | "top-k";
  /** k for top-k sampling (default 40). */
  topK?: number;
  /** Softmax temperature for sampling (default 1). */
  temperature?: number;
  /** Seeded generator; required for top-k. */
  rng?: Rng;
  /** Token ids that end generation (not included in the output). */
  stopIds?: number[];
  /** Called with each new token as soon as it is chosen (awaited), so callers can stream it. */
  onToken?: (id: number) => void | Promise<void>;
}

/**
 * Continue `promptIds`, returning only the new token ids (each also passed to `onToken` as it
 * comes). Each step runs the model over the last `maxSeqLen` tokens and reads the logits of the
 * final position; see {@link capToContext} to stay within the context instead of sliding.
 */
export async function generate(
  model: LlamaModel,
  promptIds: number[],
  options: GenerateOptions,
): Promise<number[]> {
  const { maxNewTokens, strategy = "greedy", topK = 40, temperature = 1, stopIds = [] } = options;
  if (strategy === "top-k" && !options.rng) throw new Error("top-k sampling needs a seeded rng");
  if (promptIds.length === 0) throw new Error("generate: the prompt encodes to no tokens");
  const seq = [...promptIds];
  const out: number[] = [];
  const window = model.config.maxSeqLen;
  for (let step = 0; step < maxNewTokens; step++) {
    const ctx = seq.slice(-window);
    const logitsT = tf.tidy(() => {
      const h = model.hidden(tf.tensor2d([ctx], [1, ctx.length], "int32"));
      const last = tf.reshape(tf.slice(h, [0, ctx.length - 1, 0], [1, 1, model.config.dim]), [
        1,
        -1,
      ]) as tf.Tensor2D;
      return model.logits(last);
    });
    const logits = await logitsT.data() as Float32Array;
    logitsT.dispose();
    const next = strategy === "greedy" ? argmax(logits) : sampleTopK(logits, topK, temperature, options.rng!);
    if (stopIds.includes(next)) break;
    seq.push(next);
    out.push(next);
    await options.onToken?.(next);
  }
  return out;
}

/**
 * How many tokens may follow a prompt of `promptLength` tokens within a context of `maxSeqLen`:
 * `requested`, or less when it would run past the context (`capped` says so). Throws a one-line
 * error when the prompt alone fills the context.
 */
export function capToContext(
  maxSeqLen: number,
  promptLength: number,
  requested: number,
): { maxNewTokens: number; capped: boolean } {
  const room = maxSeqLen - promptLength;
  if (room <= 0) {
    throw new Error(
      `the prompt is ${promptLength} tokens and the model's context ${maxSeqLen}: no room to generate; shorten the prompt`,
    );
  }
  return requested > room ? { maxNewTokens: room, capped: true } : { maxNewTokens: requested, capped: false };
}

/**
 * Turns token ids, one at a time, into text pieces that can be printed as they come and together
 * equal `decode` of all the ids. The whole sequence is decoded each time (so a tokenizer's
 * context-dependent spacing stays right), and a trailing U+FFFD, an unfinished UTF-8 character of
 * byte tokens, is held back until the next token completes it.
 */
export class DecodeStream {
  #ids: number[] = [];
  #emitted = "";

  /** `decode` turns a whole id sequence into text (e.g. a tokenizer's `decode`). */
  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Add one token; returns the new text to print (possibly empty). */
  push(id: number): string {
    this.#ids.push(id);
    let text = this.decode(this.#ids);
    while (text.endsWith("\uFFFD")) text = text.slice(0, -1);
    return this.#advance(text);
  }

  /** The text not yet returned, including any held-back characters; call once at the end. */
  flush(): string {
    return this.#advance(this.decode(this.#ids));
  }

  #advance(text: string): string {
    // Text that rewrote what was already printed cannot be taken back: wait until it agrees.
    if (!text.startsWith(this.#emitted)) return "";
    const piece = text.slice(this.#emitted.length);
    this.#emitted = text;
    return piece;
  }
}

/** Index of the largest value (first on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Sample from the softmax of the k largest logits divided by the temperature. */
export function sampleTopK(logits: ArrayLike<number>, k: number, temperature: number, rng: Rng): number {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const idx = Array.from({ length: logits.length }, (_, i) => i)
    .sort((a, b) => logits[b] - logits[a] || a - b)
    .slice(0, Math.max(1, Math.min(k, logits.length)));
  const max = logits[idx[0]];
  const weights = idx.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.next() * total;
  for (let j = 0; j < idx.length; j++) {
    u -= weights[j];
    if (u < 0) return idx[j];
  }
  return idx[idx.length - 1];
}
