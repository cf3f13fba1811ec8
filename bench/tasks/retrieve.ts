/**
 * `retrieve`: a bi-encoder. Queries and documents are embedded by the same model (mean or
 * last-token pooling), scored by cosine similarity, and trained with InfoNCE over in-batch
 * negatives (plus one hard negative per query when the data has them):
 * loss = -log softmax(cos(q_i, d_j) / temperature)_i over the batch's documents j.
 * Metrics: MRR, Recall@k and NDCG@k for k in {1, 3, 5, 10} (graded relevance, trec_eval gain),
 * computed over the evaluated split's own corpus; per-query values in the record.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LlamaModel } from "../../models/llama.ts";
import type { Tokenizer } from "../../models/tokenizers/types.ts";
import { Rng } from "../../models/util/rng.ts";
import type { RetrievalDataset } from "../../datasets/types.ts";
import { evaluate as evaluateRun, rankingMeasure } from "../metrics/ranking.ts";
import { TASK_METRICS, taskPrimary } from "../metrics/table.ts";
import { chunks, encodeTexts, l2Normalize, padBatch, pooledEmbedding, type Pooling } from "./encode.ts";
import type { Evaluation, TaskRunner } from "./types.ts";

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
  // Training pairs: each train query with its most relevant document.
  const pairs: { query: number[]; positive: string; negatives: string[] }[] = [];
  for (const q of data.queries.train) {
    const judged = [...(data.qrels.train.get(q.id) ?? new Map())].filter(([, r]) => r > 0).sort((a, b) =>
      b[1] - a[1]
    );
    if (judged.length === 0) continue;
    pairs.push({
      query: encodeTexts(tokenizer, [q.text], options.maxLength)[0],
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
      ids = encodeTexts(tokenizer, [text], options.maxLength)[0];
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
    const out = new Float32Array(seqs.length * model.config.dim);
    let row = 0;
    for (const idx of chunks(seqs.length, options.evalBatch ?? 64)) {
      const e = embed(idx.map((i) => seqs[i]));
      out.set(await e.data() as Float32Array, row * model.config.dim);
      row += idx.length;
      e.dispose();
    }
    return out;
  };
  const testQueries = data.queries.test.map((q) => encodeTexts(tokenizer, [q.text], options.maxLength)[0]);
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
      const queries = data.queries[split].slice(0, maxItems ?? undefined);
      const qrels = data.qrels[split];
      const judged = new Set(queries.flatMap((q) => [...(qrels.get(q.id)?.keys() ?? [])]));
      const corpus = evaluationCorpus(data.corpus[split], judged, options.maxCorpus);
      const dim = model.config.dim;
      const qEmb = await embedAll(queries.map((q) => encodeTexts(tokenizer, [q.text], options.maxLength)[0]));
      const dEmb = await embedAll(corpus.map((d) => docTokens(d.id)));
      const depth = options.depth ?? 100;
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
      };
    },
    async inferOne(index) {
      const e = embed([testQueries[index % testQueries.length]]);
      await e.data();
      e.dispose();
    },
    dispose: () => {},
  };
}
