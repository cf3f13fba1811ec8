/**
 * Concept retrieval built from any concept graph (WordNet synsets, SKOS concepts).
 *
 * - Query: a concept's definition (never part of any document). Document: the concept's labels
 *   joined by ", ", optionally followed by its first broader concept's first label in parentheses
 *   (`withHypernym`), e.g. `dog, domestic dog, Canis familiaris (canine)`.
 * - Splits are disjoint by concept and fixed per concept. A split's corpus holds exactly that
 *   split's concepts, as in ELSST/OrthoGeoLoRA-style evaluation: test concepts (their labels and
 *   definitions) never occur in training, not even as negatives, and test queries are ranked among
 *   unseen concepts only, so the score measures generalisation to new concepts.
 * - Relevance: the concept itself 2 (1 with `binary`); with `neighborCredit`, 1 for each direct
 *   broader and narrower concept that is in the same split's corpus.
 * - Hard negatives: siblings (other narrower concepts of the same broader ones) in the same split.
 * @module
 */
import { capSplit } from "./split.ts";
import { dataOptionFlag } from "./options.ts";
import type { Qrels, RetrievalDataset, SplitName, TextExample } from "./types.ts";

/** One node of a concept graph. */
export interface Concept {
  id: string;
  /** Preferred label first, then alternative labels. */
  labels: string[];
  /** Query text; a concept without one is only a document. */
  definition?: string;
  broader: string[];
  narrower: string[];
  split: SplitName;
}

/** Options shared by every concept-retrieval dataset. */
export interface ConceptRetrievalOptions {
  /** Append the first broader concept's first label to each document. Default false. */
  withHypernym?: boolean;
  /** Relevance 1 instead of 2 for the concept itself. Default false. */
  binary?: boolean;
  /** Graded credit 1 for direct broader/narrower concepts in the same corpus. Default false. */
  neighborCredit?: boolean;
  /** Cap on train queries (fixed-seed prefix, see capSplit); default all. Prefer `trainSize` in the registry. */
  maxTrainQueries?: number;
  /** Cap on dev queries (fixed-seed prefix, see capSplit). */
  maxDevQueries?: number;
  /** Cap on test queries (fixed-seed prefix, see capSplit). */
  maxTestQueries?: number;
}

const SPLITS: SplitName[] = ["train", "dev", "test"];

/** Build the retrieval dataset; `splitSeed` is recorded for `subsetTrain` (query caps use a fixed seed). */
export function buildConceptRetrieval(
  name: string,
  concepts: readonly Concept[],
  options: ConceptRetrievalOptions,
  splitSeed: number,
): RetrievalDataset {
  if (options.binary && options.neighborCredit) {
    throw new Error(
      `${name}: binary and neighborCredit both set; neighbor credit needs graded relevance: drop ${
        dataOptionFlag("binary", true)
      }`,
    );
  }
  const byId = new Map(concepts.map((c) => [c.id, c]));
  const docText = (c: Concept): string => {
    const base = c.labels.join(", ");
    if (!options.withHypernym) return base;
    const parent = c.broader.map((b) => byId.get(b)).find((p) => p && p.labels.length > 0);
    return parent ? `${base} (${parent.labels[0]})` : base;
  };
  const caps = { train: options.maxTrainQueries, dev: options.maxDevQueries, test: options.maxTestQueries };
  const corpus = {} as RetrievalDataset["corpus"];
  const queries = {} as RetrievalDataset["queries"];
  const qrels = {} as RetrievalDataset["qrels"];
  const hardNegatives = new Map<string, string[]>();
  for (const split of SPLITS) {
    const members = concepts.filter((c) => c.split === split && c.labels.length > 0);
    corpus[split] = members.map((c) => ({ id: c.id, text: docText(c) }));
    const inSplit = new Set(members.map((c) => c.id));
    const all: TextExample[] = members.filter((c) => c.definition).map((c) => ({
      id: c.id,
      text: c.definition!,
    }));
    queries[split] = capSplit(all, caps[split], `${name}:${split}-queries`);
    const rels: Qrels = new Map();
    for (const q of queries[split]) {
      const c = byId.get(q.id)!;
      const m = new Map<string, number>([[c.id, options.binary ? 1 : 2]]);
      if (options.neighborCredit) {
        for (const n of [...c.broader, ...c.narrower]) if (inSplit.has(n) && !m.has(n)) m.set(n, 1);
      }
      rels.set(q.id, m);
      const sibs = new Set<string>();
      for (const b of c.broader) {
        for (const s of byId.get(b)?.narrower ?? []) if (s !== c.id && inSplit.has(s)) sibs.add(s);
      }
      if (sibs.size > 0) hardNegatives.set(q.id, [...sibs]);
    }
    qrels[split] = rels;
  }
  return { task: "retrieve", name, splitSeed, corpus, queries, qrels, hardNegatives };
}
