/**
 * The stories260K fixture (`tests/fixtures/stories260K/`, MIT, attribution in its README) and its
 * reference numbers, copied from its README (computed there with an independent float64
 * implementation). Used by tests and examples.
 * @module
 */
import { fileURLToPath } from "node:url";

/** Folder of the fixture, with a trailing slash. */
export const STORIES_DIR = fileURLToPath(new URL("../tests/fixtures/stories260K/", import.meta.url));
/** The llama2.c checkpoint. */
export const STORIES_MODEL = `${STORIES_DIR}stories260K.bin`;
/** Its 512-token llama2.c tokenizer. */
export const STORIES_TOKENIZER = `${STORIES_DIR}tok512.bin`;
/** The README's reference sentence. */
export const STORIES_SENTENCE = "Once upon a time, there was a little girl named Lily.";
/** Its ids with BOS, per the README. */
export const STORIES_SENTENCE_IDS = [
  1,
  348,
  342,
  364,
  305,
  261,
  397,
  439,
  400,
  285,
  261,
  399,
  294,
  316,
  427,
  299,
  335,
  266,
  340,
  431,
];
/** Mean next-token cross-entropy of the sentence's 19 predictions, nats. */
export const STORIES_SENTENCE_LOSS = 1.00238;
/** Greedy continuation of "Once upon a time". */
export const STORIES_CONTINUATION =
  ", a little girl was very happy. She wanted to play with her dolls and she went to the park.";
