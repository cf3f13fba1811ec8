/**
 * Language-model metrics as lm-evaluation-harness defines them for `loglikelihood_rolling` tasks
 * (lm_eval/api/metrics.py): each document contributes (loglikelihood, count) and the corpus value
 * is a weighted mean, `weighted_perplexity = exp(-sum ll / sum count)` and
 * `bits_per_byte = -sum ll / sum bytes / ln 2`, with bytes = `len(text.encode("utf-8"))`, and
 * `word_perplexity` with words = `len(re.split(r"\s+", text))` (its wikitext task).
 * Here the inputs are the total negative log-likelihood in nats (NLL = -sum ll) and the counts.
 *
 * Also the rolling-window splitter of lm-evaluation-harness (lm_eval/utils.py
 * `get_rolling_token_windows` and `make_disjoint_window`) used to score documents longer than the
 * model's context.
 * @module
 */

function checkTotals(totalNll: number, count: number, what: string): void {
  if (!Number.isFinite(totalNll) || totalNll < 0) {
    throw new Error(`total NLL must be a finite number >= 0 (nats), got ${totalNll}`);
  }
  if (!(Number.isInteger(count) && count > 0)) {
    throw new Error(`${what} must be a positive integer, got ${count}`);
  }
}

/** Token perplexity: PPL = exp(NLL / tokens), NLL in nats summed over the predicted tokens. */
export function tokenPerplexity(totalNll: number, tokens: number): number {
  checkTotals(totalNll, tokens, "token count");
  return Math.exp(totalNll / tokens);
}

/** Byte perplexity: exp(NLL / bytes), bytes = UTF-8 length of the scored text (lm-eval `byte_perplexity`). */
export function bytePerplexity(totalNll: number, bytes: number): number {
  checkTotals(totalNll, bytes, "byte count");
  return Math.exp(totalNll / bytes);
}

/** Bits per byte: BPB = NLL / (bytes * ln 2) = log2(byte perplexity) (lm-eval `bits_per_byte`). */
export function bitsPerByte(totalNll: number, bytes: number): number {
  checkTotals(totalNll, bytes, "byte count");
  return totalNll / (bytes * Math.LN2);
}

/** Word perplexity: exp(NLL / words), words counted by {@link wordCount} (lm-eval `word_perplexity`). */
export function wordPerplexity(totalNll: number, words: number): number {
  checkTotals(totalNll, words, "word count");
  return Math.exp(totalNll / words);
}

/**
 * Words of `text` as lm-eval's wikitext task counts them, `len(re.split(r"\s+", text))`: pieces
 * between whitespace runs, so leading or trailing whitespace adds an empty piece (" a b " is 4)
 * and "" is 1. JavaScript's split by /\s+/ yields the same pieces as Python's re.split here.
 */
export function wordCount(text: string): number {
  return text.split(/\s+/).length;
}

/** Number of bytes of `text` in UTF-8, the byte count lm-eval uses (`len(s.encode("utf-8"))`). */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/**
 * One rolling window: feed `input` to the model and score its last `target.length` positions;
 * the logits at input position `scoreFrom + i` predict `target[i]`.
 */
export interface TokenWindow<T> {
  input: T[];
  target: T[];
  /** = input.length - target.length: first input position whose logits are scored. */
  scoreFrom: number;
}

/**
 * Split `tokens` into rolling windows so each token is predicted exactly once, as lm-eval's
 * `get_rolling_token_windows(token_list, prefix_token, max_seq_len, context_len)`:
 * - window 1: input = [prefix, t_0 .. t_{m-2}], target = t_0 .. t_{m-1}, with m = min(L, n);
 * - then, while p < n tokens are predicted: w = min(n - p, L - c + 1), e = p + w,
 *   input = t_{e-L-1} .. t_{e-2}, target = t_{e-w} .. t_{e-1}
 * (L = maxSeqLen, c = contextLen, 1 <= c <= L). Each later window is a full L tokens, so every
 * prediction after the first window sees at least c tokens of context.
 * Example (lm-eval docstring): tokens 0..8, prefix P, L = 3, c = 2 gives inputs
 * [P 0 1] [1 2 3] [3 4 5] [5 6 7] and targets [0 1 2] [3 4] [5 6] [7 8].
 */
export function rollingTokenWindows<T>(
  tokens: readonly T[],
  prefixToken: T,
  maxSeqLen: number,
  contextLen: number,
): TokenWindow<T>[] {
  if (
    !Number.isInteger(maxSeqLen) || !Number.isInteger(contextLen) || contextLen < 1 || contextLen > maxSeqLen
  ) {
    throw new Error(
      `need integers 1 <= contextLen <= maxSeqLen, got contextLen ${contextLen}, maxSeqLen ${maxSeqLen}`,
    );
  }
  const windows: TokenWindow<T>[] = [];
  const n = tokens.length;
  if (n === 0) return windows;
  const window = (input: T[], target: T[]) =>
    windows.push({ input, target, scoreFrom: input.length - target.length });
  // Inputs sit one token left of targets, so scoring the last w of L logits leaves L - w + 1
  // tokens of context for a window's first target; w = L - c + 1 makes that exactly c.
  const predLen = maxSeqLen - contextLen + 1;
  const first = Math.min(maxSeqLen, n);
  window([prefixToken, ...tokens.slice(0, first - 1)], tokens.slice(0, first));
  let predicted = first;
  while (predicted < n) {
    const w = Math.min(n - predicted, predLen);
    const end = predicted + w;
    // end >= maxSeqLen + 1 here, so the start index is never negative.
    window(tokens.slice(end - maxSeqLen - 1, end - 1), tokens.slice(end - w, end));
    predicted += w;
  }
  return windows;
}

/**
 * Make a window's input stop where its predictions start (lm-eval `make_disjoint_window`):
 * input' = input[0, |input| - |target| + 1) (end exclusive), so input' ++ target is the window's
 * contiguous token span with no token in both parts.
 * Example: ([1 2 3 4 5], [4 5 6]) -> ([1 2 3], [4 5 6]).
 */
export function makeDisjointWindow<T>(input: readonly T[], target: readonly T[]): [T[], T[]] {
  if (target.length === 0 || target.length > input.length) {
    throw new Error(`target length ${target.length} must be in 1..${input.length} (the input length)`);
  }
  return [input.slice(0, input.length - target.length + 1), [...target]];
}
