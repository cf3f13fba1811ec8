/**
 * Shared dataset shapes for the three peft-bench tasks: `classify` (text -> label), `retrieve`
 * (query -> documents, bi-encoder) and `lm` (perplexity on texts).
 *
 * Differences from the first sketch, on purpose:
 * - every dataset carries `task` and `splitSeed` (the seed of its train-subset permutation, see
 *   `subsetTrain` in split.ts), so a consumer never has to guess either;
 * - a retrieval dataset has one corpus per split: concept tasks (wordnet-concepts, skos:) rank a
 *   split's queries among that split's concepts only, so test concepts never appear in training,
 *   not even as negatives. BEIR data keeps one shared corpus: all three fields are the same array.
 * @module
 */

/** The three task kinds a dataset can serve. */
export type TaskKind = "classify" | "retrieve" | "lm";

/** The three evaluation splits. */
export type SplitName = "train" | "dev" | "test";

/** A text with a stable id (unique within its dataset). */
export interface TextExample {
  id: string;
  text: string;
}

/** A text with its gold label. */
export interface ClassificationExample extends TextExample {
  label: string;
}

/** A classification dataset; `labels` are the train labels, sorted, and every dev/test label is one of them. */
export interface ClassificationDataset {
  task: "classify";
  name: string;
  splitSeed: number;
  labels: string[];
  train: ClassificationExample[];
  dev: ClassificationExample[];
  test: ClassificationExample[];
}

/** qid -> docid -> graded relevance (higher is more relevant; 0 is judged non-relevant). */
export type Qrels = Map<string, Map<string, number>>;

/** A retrieval dataset: per-split queries, qrels and corpus (see the module note on corpora). */
export interface RetrievalDataset {
  task: "retrieve";
  name: string;
  splitSeed: number;
  corpus: { train: TextExample[]; dev: TextExample[]; test: TextExample[] };
  queries: { train: TextExample[]; dev: TextExample[]; test: TextExample[] };
  qrels: { train: Qrels; dev: Qrels; test: Qrels };
  /** qid -> ids of hard-negative documents from the same split's corpus (e.g. sibling concepts). */
  hardNegatives?: Map<string, string[]>;
}

/** A language-modelling dataset; texts stay whole (the lm task windows long ones). */
export interface LmDataset {
  task: "lm";
  name: string;
  splitSeed: number;
  train: TextExample[];
  test: TextExample[];
}

/** Any dataset; switch on `task`. */
export type Dataset = ClassificationDataset | RetrievalDataset | LmDataset;
