/**
 * Pretraining corpus for the project's own small LM, and the matching held-out texts.
 *
 * Corpus = noun glosses of the WordNet train pool + all verb, adjective and adverb glosses (no
 * task evaluates on them) + SOTU train speeches. Excluded: every noun synset of the dev and test
 * splits (whole splits, not only the capped default subsets, so any cap a study picks stays
 * clean), every SOTU test speech, and, by exact text, any remaining text equal to one of those
 * (e.g. a verb gloss identical to a test noun gloss, or a one-word gloss equal to a test concept's
 * document). Retrieval documents (lemma lists) are
 * never in the corpus unless `withLemmas` adds `lemmas: gloss` lines, train-pool nouns only.
 * @module
 */
import { Rng } from "../models/util/rng.ts";
import { isSotuTest, sotuSpeeches } from "./sotu.ts";
import { wordnetSplit } from "./wordnet_tasks.ts";
import { HYPERNYM, loadWordNet, nounByOffset, related } from "./wordnet.ts";

/** Counts of what went into the corpus. */
export interface PretrainStats {
  nounGlosses: number;
  otherGlosses: number;
  sotuSpeeches: number;
  /** Texts dropped because they equal a held-out text. */
  droppedDuplicates: number;
  chars: number;
}

/** Texts held out for perplexity: noun glosses of the WordNet test split and SOTU test speeches. */
export function heldOutTexts(): { wordnet: string[]; sotu: string[] } {
  return {
    wordnet: loadWordNet("noun").filter((s) => wordnetSplit(s.offset) === "test").map((s) => s.gloss),
    sotu: sotuSpeeches().filter((s) => isSotuTest(s.id)).map((s) => s.text),
  };
}

/**
 * Every text a default task may evaluate on: dev/test glosses and concept documents (with and
 * without hypernym) of the WordNet noun tasks, and SOTU test speeches.
 */
export function evaluatedTexts(): Set<string> {
  const out = new Set<string>();
  for (const s of loadWordNet("noun")) {
    if (wordnetSplit(s.offset) === "train") continue;
    out.add(s.gloss);
    // Concept documents too: some one-word glosses elsewhere equal a lemma list (e.g. "breath").
    const doc = s.words.join(", ");
    out.add(doc);
    const parent = related(s, HYPERNYM).map(nounByOffset).find((p) => p);
    if (parent) out.add(`${doc} (${parent.words[0]})`);
  }
  for (const s of sotuSpeeches()) if (isSotuTest(s.id)) out.add(s.text);
  return out;
}

/** The pretraining corpus (deterministic order: nouns, verbs, adjectives, adverbs, speeches). */
export function pretrainCorpus(
  options: { withLemmas?: boolean } = {},
): { texts: string[]; stats: PretrainStats } {
  const banned = evaluatedTexts();
  const texts: string[] = [];
  const stats: PretrainStats = {
    nounGlosses: 0,
    otherGlosses: 0,
    sotuSpeeches: 0,
    droppedDuplicates: 0,
    chars: 0,
  };
  const add = (text: string, kind: "nounGlosses" | "otherGlosses" | "sotuSpeeches") => {
    if (banned.has(text)) {
      stats.droppedDuplicates++;
      return;
    }
    texts.push(text);
    stats[kind]++;
    stats.chars += text.length;
  };
  for (const s of loadWordNet("noun")) {
    if (wordnetSplit(s.offset) !== "train") continue;
    add(s.gloss, "nounGlosses");
    // The lemma line contains the gloss; skip it when the gloss itself was banned.
    if (options.withLemmas && !banned.has(s.gloss)) add(`${s.words.join(", ")}: ${s.gloss}`, "nounGlosses");
  }
  for (const pos of ["verb", "adj", "adv"] as const) {
    for (const s of loadWordNet(pos)) add(s.gloss, "otherGlosses");
  }
  for (const s of sotuSpeeches()) if (!isSotuTest(s.id)) add(s.text, "sotuSpeeches");
  return { texts, stats };
}

/** How many held-out glosses form the check text. */
export const CHECK_TEXT_COUNT = 50;

/** The held-out WordNet glosses scored for the README: a fixed-seed sample of the test split. */
export function heldOutGlossSample(count: number): string[] {
  return new Rng(12345).shuffle([...heldOutTexts().wordnet]).slice(0, count);
}

/**
 * The fixed text whose held-out loss the model README records and `tests/default_model_test.ts`
 * re-checks: the first CHECK_TEXT_COUNT glosses of the sample, joined by newlines.
 */
export function checkText(): string {
  return heldOutGlossSample(CHECK_TEXT_COUNT).join("\n");
}
