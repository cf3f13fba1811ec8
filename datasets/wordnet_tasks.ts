/**
 * The three WordNet noun tasks, all on one fixed split of the noun synsets.
 *
 * Split: {@link wordnetSplit} = `hashSplit(offset)` of the 8-digit WordNet 3.1 synset offset:
 * ~10% test, ~10% dev, ~80% train pool. It takes no seed, so every task, every run and the
 * pretraining corpus agree on it; this is what keeps evaluation glosses out of pretraining.
 *
 * Duplicate glosses: 368 gloss texts are shared by 2+ noun synsets. Such synsets are never used
 * as examples/queries/LM texts in any split (a duplicate would leak across splits and make a
 * query ambiguous); they still are retrieval documents. See {@link evaluableNouns}.
 * @module
 */
import { buildConceptRetrieval, type Concept, type ConceptRetrievalOptions } from "./concepts.ts";
import { capSplit, DEFAULT_SPLIT_SEED, hashSplit } from "./split.ts";
import type {
  ClassificationDataset,
  ClassificationExample,
  LmDataset,
  RetrievalDataset,
  SplitName,
} from "./types.ts";
import { HYPERNYM, HYPONYM, loadWordNet, related, type Synset } from "./wordnet.ts";

/** The fixed split of a noun synset, from its offset only. */
export function wordnetSplit(offset: string): SplitName {
  return hashSplit(offset);
}

let evaluable: Synset[] | undefined;
/** Noun synsets whose gloss text is unique among all noun synsets (cached). */
export function evaluableNouns(): Synset[] {
  if (!evaluable) {
    const count = new Map<string, number>();
    const nouns = loadWordNet("noun");
    for (const s of nouns) count.set(s.gloss, (count.get(s.gloss) ?? 0) + 1);
    evaluable = nouns.filter((s) => count.get(s.gloss) === 1);
  }
  return evaluable;
}

/** Size caps for WordNet datasets (fixed-seed prefixes, nested; see `capSplit`); `splitSeed` is only recorded. */
export interface WordNetCapOptions {
  splitSeed?: number;
  /** Default 500 (classify), 200 (retrieve queries). */
  maxDev?: number;
  /** Default 1000 (classify, lm), 300 (retrieve queries). */
  maxTest?: number;
}

/**
 * `wordnet-lex` (classify): noun gloss -> lexicographer file (26 classes, noun.Tops..noun.time).
 * Train is the whole train pool (use `subsetTrain` for the size knob); dev/test are capped.
 */
export function wordnetLex(options: WordNetCapOptions = {}): ClassificationDataset {
  const seed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  const parts: Record<SplitName, ClassificationExample[]> = { train: [], dev: [], test: [] };
  for (const s of evaluableNouns()) {
    parts[wordnetSplit(s.offset)].push({ id: `n${s.offset}`, text: s.gloss, label: s.lexname });
  }
  const labels = [...new Set(parts.train.map((e) => e.label))].sort();
  return {
    task: "classify",
    name: "wordnet-lex",
    splitSeed: seed,
    labels,
    train: parts.train,
    dev: capSplit(parts.dev, options.maxDev ?? 500, "wordnet-lex:dev"),
    test: capSplit(parts.test, options.maxTest ?? 1000, "wordnet-lex:test"),
  };
}

/** Options of {@link wordnetConcepts}. */
export type WordNetConceptOptions = ConceptRetrievalOptions & { splitSeed?: number };

/**
 * `wordnet-concepts` (retrieve): query = gloss, document = lemma names (+ hypernym lemma with
 * `withHypernym`); relevance, hard negatives and per-split corpora as in concepts.ts.
 * Broader = `@`/`@i` hypernyms, narrower = `~`/`~i` hyponyms. Defaults: 200 dev, 300 test queries.
 */
export function wordnetConcepts(options: WordNetConceptOptions = {}): RetrievalDataset {
  const seed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  const queryable = new Set(evaluableNouns().map((s) => s.offset));
  const concepts: Concept[] = loadWordNet("noun").map((s) => ({
    id: `n${s.offset}`,
    labels: s.words,
    definition: queryable.has(s.offset) ? s.gloss : undefined,
    broader: related(s, HYPERNYM).map((o) => `n${o}`),
    narrower: related(s, HYPONYM).map((o) => `n${o}`),
    split: wordnetSplit(s.offset),
  }));
  return buildConceptRetrieval(
    "wordnet-concepts",
    concepts,
    {
      ...options,
      maxDevQueries: options.maxDevQueries ?? 200,
      maxTestQueries: options.maxTestQueries ?? 300,
    },
    seed,
  );
}

/** `wordnet-glosses` (lm): train-pool glosses / test-split glosses (default cap 1000 test). */
export function wordnetGlosses(options: WordNetCapOptions = {}): LmDataset {
  const seed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  const train = [], test = [];
  for (const s of evaluableNouns()) {
    const split = wordnetSplit(s.offset);
    if (split === "train") train.push({ id: `n${s.offset}`, text: s.gloss });
    else if (split === "test") test.push({ id: `n${s.offset}`, text: s.gloss });
  }
  return {
    task: "lm",
    name: "wordnet-glosses",
    splitSeed: seed,
    train,
    test: capSplit(test, options.maxTest ?? 1000, "wordnet-glosses:test"),
  };
}
