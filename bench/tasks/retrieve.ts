/**
 * `retrieve`: a bi-encoder. Queries and documents are embedded by the same model (mean or
 * last-token pooling), scored by cosine similarity, and trained with InfoNCE over in-batch
 * negatives (plus one hard negative per query when the data has them):
 * loss = -log softmax(cos(q_i, d_j) / temperature)_i over the batch's documents j.
 * Metrics: MRR, Recall@k and NDCG@k for k in {1, 3, 5, 10} (graded relevance, trec_eval gain),
 * computed over the evaluated split's own corpus; per-query values in the record. Trivial
 * baselines on the same queries and corpus with the same measures: BM25 (bench/metrics/bm25.ts)
 * and the exact expectation of a random ranking (bench/metrics/random_ranking.ts).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../../models/llama.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import { Rng } from "../../models/util/rng.ts";
import type { RetrievalDataset } from "../../datasets/types.ts";
import {
  evaluate as evaluateRun,
  type Qrels,
  queriesToAverage,
  rankDocuments,
  rankingMeasure,
  type Run,
} from "../metrics/ranking.ts";
import { BM25_DEFAULTS, Bm25Index } from "../metrics/bm25.ts";
import { randomExpectedGraded } from "../metrics/random_ranking.ts";
import { CoverageBySplit } from "./coverage.ts";
import { TASK_METRICS, taskPrimary } from "../metrics/table.ts";
import {
  encodeTexts,
  l2Normalize,
  lengthBatches,
  padBatch,
  pooledEmbedding,
  type Pooling,
} from "./encode.ts";
import type { Evaluation, TaskRunner, TrivialBaseline } from "./types.ts";

/** Options of the retrieval task. */
export interface RetrieveOptions {
  maxLength: number;
  pooling: Pooling;
  temperature: number;
  evalBatch?: number;
  /** Documents kept per query in the run (default 100). */
  depth?: number;
  /**
   * Evaluate against at most this many documents: every document judged for the evaluated
   * queries, plus distractors in a fixed order (independent of the run seed) up to the cap.
   */
  maxCorpus?: number | null;
}

/** The evaluation corpus: judged documents first, then a fixed sample of distractors. */
export function evaluationCorpus<T extends { id: string }>(
  corpus: T[],
  judged: Set<string>,
  maxCorpus: number | null | undefined,
): T[] {
  if (!maxCorpus || corpus.length <= maxCorpus) return corpus;
  const keep = corpus.filter((d) => judged.has(d.id));
  const others = new Rng(0x5eed).shuffle(corpus.filter((d) => !judged.has(d.id)));
  return [...keep, ...others.slice(0, Math.max(0, maxCorpus - keep.length))];
}

/** Build the retrieval task on a model. */
export function retrieveTask(
  model: LlamaModel,
  tokenizer: Tokenizer,
  data: RetrievalDataset,
  options: RetrieveOptions,
  rng: Rng,
): TaskRunner {
  const pad = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const docText = new Map<string, string>();
  for (const split of ["train", "dev", "test"] as const) {
    for (const d of data.corpus[split]) docText.set(d.id, d.text);
  }
  // Tokenizer coverage of what the task encodes: train and test queries, and the documents it
  // embeds (training positives and hard negatives, the evaluation corpus).
  const coverage = new CoverageBySplit(tokenizer);
  // Training pairs: each train query with its most relevant document.
  const pairs: { query: number[]; positive: string; negatives: string[] }[] = [];
  for (const q of data.queries.train) {
    const judged = [...(data.qrels.train.get(q.id) ?? new Map())].filter(([, r]) => r > 0).sort((a, b) =>
      b[1] - a[1]
    );
    if (judged.length === 0) continue;
    pairs.push({
      query: encodeTexts(
        tokenizer,
        [q.text],
        options.maxLength,
        coverage.split("train queries", options.maxLength),
      )[0],
      positive: judged[0][0],
      negatives: (data.hardNegatives?.get(q.id) ?? []).filter((d) => docText.has(d)),
    });
  }
  if (pairs.length === 0) throw new Error(`dataset ${data.name}: no training query has a relevant document`);
  const docIds = new Map<string, number[]>();
  const docTokens = (id: string) => {
    let ids = docIds.get(id);
    if (!ids) {
      const text = docText.get(id);
      if (text === undefined) throw new Error(`qrels name unknown document '${id}'`);
      ids =
        encodeTexts(tokenizer, [text], options.maxLength, coverage.split("documents", options.maxLength))[0];
      docIds.set(id, ids);
    }
    return ids;
  };
  const negRng = rng.fork("hard-negatives");
  const embed = (seqs: number[][]) =>
    tf.tidy(() => {
      const batch = padBatch(seqs, pad);
      return l2Normalize(pooledEmbedding(model, batch, options.pooling));
    });
  const embedAll = async (seqs: number[][]): Promise<Float32Array> => {
    const dim = model.config.dim;
    const out = new Float32Array(seqs.length * dim);
    for (const idx of lengthBatches(seqs, options.evalBatch ?? 64)) {
      const e = embed(idx.map((i) => seqs[i]));
      const rows = await e.data() as Float32Array;
      idx.forEach((i, j) => out.set(rows.subarray(j * dim, (j + 1) * dim), i * dim));
      e.dispose();
    }
    return out;
  };
  const testQueries = encodeTexts(
    tokenizer,
    data.queries.test.map((q) => q.text),
    options.maxLength,
    coverage.split("test queries", options.maxLength),
  );
  /** The queries, judgments and corpus `evaluate(split, maxItems)` scores. */
  const evaluationSet = (split: "dev" | "test", maxItems: number | null) => {
    const queries = data.queries[split].slice(0, maxItems ?? undefined);
    const qrels = data.qrels[split];
    const judged = new Set(queries.flatMap((q) => [...(qrels.get(q.id)?.keys() ?? [])]));
    return { queries, qrels, corpus: evaluationCorpus(data.corpus[split], judged, options.maxCorpus) };
  };
  const depth = options.depth ?? 100;
  const measure = (qrels: Qrels, run: Run) => {
    const metrics: Record<string, number> = {};
    for (const name of TASK_METRICS.retrieve.reported) {
      metrics[name] = evaluateRun(qrels, run, rankingMeasure(name)).mean;
    }
    return metrics;
  };
  return {
    ...taskPrimary("retrieve"),
    headVariables: [],
    trainItems: pairs.length,
    testItems: testQueries.length,
    sampleSequences: (n) => testQueries.slice(0, n).map((s) => s.slice()),
    trainSequences: (items) =>
      items.flatMap((i) => [pairs[i].query.slice(), docTokens(pairs[i].positive).slice()]),
    loss(items) {
      return tf.tidy(() => {
        const docs: string[] = [];
        const index = new Map<string, number>();
        const add = (id: string) => {
          if (!index.has(id)) {
            index.set(id, docs.length);
            docs.push(id);
          }
          return index.get(id)!;
        };
        const targets = items.map((i) => add(pairs[i].positive));
        for (const i of items) {
          const negs = pairs[i].negatives;
          if (negs.length > 0) add(negs[negRng.int(negs.length)]);
        }
        const q = embed(items.map((i) => pairs[i].query));
        const d = embed(docs.map(docTokens));
        const logits = tf.div(tf.matMul(q, d, false, true), options.temperature);
        // A positive shared by two queries of the batch is the target of both.
        const onehot = tf.cast(tf.oneHot(tf.tensor1d(targets, "int32"), docs.length), "float32");
        return tf.mean(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
      });
    },
    batchTokens: (items) =>
      items.reduce((s, i) => s + pairs[i].query.length + docTokens(pairs[i].positive).length, 0),
    async evaluate(split, maxItems): Promise<Evaluation> {
      const { queries, qrels, corpus } = evaluationSet(split, maxItems);
      const dim = model.config.dim;
      const queryIds = queries.map((q) => encodeTexts(tokenizer, [q.text], options.maxLength)[0]);
      const docIds = corpus.map((d) => docTokens(d.id));
      const qEmb = await embedAll(queryIds);
      const dEmb = await embedAll(docIds);
      const run = new Map<string, Map<string, number>>();
      const scores = tf.tidy(() =>
        tf.matMul(
          tf.tensor2d(qEmb, [queries.length, dim]),
          tf.tensor2d(dEmb, [corpus.length, dim]),
          false,
          true,
        )
      );
      const all = await scores.data();
      scores.dispose();
      queries.forEach((q, i) => {
        const row = all.subarray(i * corpus.length, (i + 1) * corpus.length);
        const top = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, depth);
        run.set(q.id, new Map(top.map((j) => [corpus[j].id, row[j]])));
      });
      const metrics: Record<string, number> = {};
      const perQuery = new Map<string, Record<string, unknown>>();
      for (const name of TASK_METRICS.retrieve.reported) {
        const ev = evaluateRun(qrels, run, rankingMeasure(name));
        metrics[name] = ev.mean;
        for (const [q, v] of ev.perQuery) perQuery.set(q, { ...(perQuery.get(q) ?? { id: q }), [name]: v });
      }
      return {
        metrics,
        perItem: [...perQuery.values()],
        details: { corpusSize: corpus.length, queries: queries.length },
        tokens: [...queryIds, ...docIds].reduce((s, ids) => s + ids.length, 0),
      };
    },
    trivialBaselines(maxItems): TrivialBaseline[] {
      const { queries, qrels, corpus } = evaluationSet("test", maxItems);
      // BM25 over the same corpus, cut at the same depth, ranked and scored like the model's run.
      const index = new Bm25Index(corpus.map((d) => ({ id: d.id, text: d.text })));
      const run: Run = new Map();
      for (const q of queries) {
        const matches = index.matches(q.text);
        run.set(q.id, new Map(rankDocuments(matches).slice(0, depth).map((d) => [d, matches.get(d)!])));
      }
      // The random ranking's exact expectation per query (its relevant count and grades in this
      // corpus), averaged over the queries the evaluation averages over.
      const inCorpus = new Set(corpus.map((d) => d.id));
      const averaged = queriesToAverage(qrels, run);
      const random: Record<string, number> = {};
      for (const name of TASK_METRICS.retrieve.reported) {
        let sum = 0;
        for (const q of averaged) {
          const judged = [...qrels.get(q)!];
          const gains = judged.filter(([d]) => inCorpus.has(d)).map(([, g]) => g);
          sum += randomExpectedGraded(name, corpus.length, gains, {
            depth,
            idealGains: judged.map(([, g]) => g),
          })!;
        }
        random[name] = sum / averaged.length;
      }
      return [
        {
          name: "bm25",
          metrics: measure(qrels, run),
          note: `k1=${BM25_DEFAULTS.k1}, b=${BM25_DEFAULTS.b} as Anserini/Pyserini, Lucene idf, lowercased ` +
            `letter/digit tokens, no stemming; top ${depth} of ${corpus.length} documents`,
        },
        {
          name: "random",
          metrics: random,
          note: `exact expectation over uniformly random rankings of the ${corpus.length}-document corpus, ` +
            `per query from its relevant documents and grades; top ${depth}`,
        },
      ];
    },
    tokenizerCoverage: () => coverage.result(),
    async inferOne(index) {
      const e = embed([testQueries[index % testQueries.length]]);
      await e.data();
      e.dispose();
    },
    dispose: () => {},
  };
}
