/**
 * Forgetting: how much worse the adapted model predicts held-out generic text than the frozen base
 * did, as Hugging Face PEFT's method-comparison benchmark records it (`forgetting`: cross-entropy on
 * generic text after training minus before). Measured here as the mean negative log-likelihood per
 * token, in nats, of the first {@link FORGETTING_TOKENS} tokens of a fixed text, scored in rolling
 * windows of the model's context (at most 512 tokens, `scoringWindow`): before the method applies
 * (on the possibly quantized frozen base) and after training. Positive values mean the run forgot.
 *
 * The text is `--forgetting-text FILE` when given (the way to measure other models on their own kind
 * of text), else the held-out State of the Union speeches (prose no task trains on), or, when the run's
 * own dataset is `sotu`, the held-out WordNet glosses of the default model's check text.
 * @module
 */
import type { LlamaModel } from "../models/llama.ts";
import type { Tokenizer } from "../models/tokenizers/types.ts";
import { isSotuTest, sotuSpeeches } from "../datasets/sotu.ts";
import { checkText } from "../datasets/pretrain_corpus.ts";
import { scoreWindows, scoringWindow } from "./tasks/lm_score.ts";
import { rollingTokenWindows } from "./metrics/lm.ts";

/** Tokens of the generic text that are scored (its beginning). */
export const FORGETTING_TOKENS = 2048;

/** The generic text of a run: its name for the record (`sotu-test`, `wordnet-check` or the file path) and content. */
export interface GenericText {
  name: string;
  text: string;
}

/** The record's forgetting figures. */
export interface Forgetting {
  /** Which text was scored (see {@link GenericText}). */
  text: string;
  /** Tokens scored. */
  tokens: number;
  /** Mean NLL per token (nats) of the frozen base. */
  nllBefore: number;
  /** Mean NLL per token (nats) after training. */
  nllAfter: number;
  /** nllAfter - nllBefore: positive when the run forgot. */
  delta: number;
}

/** The generic text for a run on `dataset`, or from `file` (see the module doc for the choice). */
export function genericText(dataset: string, file?: string): GenericText {
  if (file !== undefined) return { name: file, text: Deno.readTextFileSync(file) };
  if (dataset === "sotu") return { name: "wordnet-check", text: checkText() };
  const speeches = sotuSpeeches().filter((s) => isSotuTest(s.id)).map((s) => s.text);
  return { name: "sotu-test", text: speeches.join("\n") };
}

/** Mean NLL per token (nats) and token count of the first `maxTokens` tokens of `text`. */
export async function genericNll(
  model: LlamaModel,
  tokenizer: Tokenizer,
  text: string,
  maxTokens = FORGETTING_TOKENS,
): Promise<{ nll: number; tokens: number }> {
  const ids = tokenizer.encode(text).slice(0, maxTokens);
  if (ids.length === 0) throw new Error("the forgetting text has no tokens under this tokenizer");
  const prefix = tokenizer.bosId ?? tokenizer.eosId ?? ids[0];
  const { nll, tokens } = await scoreWindows(
    model,
    rollingTokenWindows(ids, prefix, scoringWindow(model), 1),
  );
  return { nll: nll / tokens, tokens };
}

/** The forgetting figures from the scores before and after training. */
export function forgettingOf(
  text: string,
  before: { nll: number; tokens: number },
  after: { nll: number; tokens: number },
): Forgetting {
  return {
    text,
    tokens: after.tokens,
    nllBefore: before.nll,
    nllAfter: after.nll,
    delta: after.nll - before.nll,
  };
}
