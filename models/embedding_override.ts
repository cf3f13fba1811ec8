/**
 * Replacing selected rows of the token-embedding table without touching the table
 * (`model.hooks.embeddingOverride`, used by trainable tokens): the rows are substituted after the
 * gather, so the table itself may be a frozen variable or a {@link StoredTensor} off the heap, and a
 * tied output head substitutes the same rows as its logit columns (Hugging Face PEFT ties the
 * head's adapter to the embedding's, `TrainableTokensLayer(tied_adapter=...)`).
 *
 * Both substitutions are selections, not additions: an overridden row equals the given row exactly,
 * and every other row is the table's own, bit for bit (PEFT's `index_copy`).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Rows that replace table rows: distinct token `ids` [k] (int32) and their `rows` [k, dim]. */
export interface EmbeddingOverride {
  ids: tf.Tensor1D;
  rows: tf.Tensor2D;
}

/**
 * For each of `n` positions holding token ids `tokens` [n]: the index into concat(own, rows) to read,
 * `n + j` where the token is `ids[j]`, else the position itself.
 */
function selection(tokens: tf.Tensor1D, ids: tf.Tensor1D): tf.Tensor1D {
  const n = tokens.shape[0];
  const k = ids.shape[0];
  // [n, k] equality with at most one hit per row (ids are distinct); argMax finds it.
  const eq = tf.equal(
    tf.reshape(tf.cast(tokens, "int32"), [n, 1]),
    tf.reshape(tf.cast(ids, "int32"), [1, k]),
  );
  const hit = tf.any(eq, 1);
  const slot = tf.add(tf.argMax(tf.cast(eq, "int32"), 1), tf.scalar(n, "int32"));
  return tf.where(hit, slot, tf.range(0, n, 1, "int32")) as tf.Tensor1D;
}

/** Embeddings [N, dim] of flat token ids [N] with the overridden rows substituted. */
export function overrideEmbeddings(x: tf.Tensor2D, tokens: tf.Tensor1D, o: EmbeddingOverride): tf.Tensor2D {
  return tf.tidy(() => tf.gather(tf.concat([x, o.rows], 0), selection(tokens, o.ids)) as tf.Tensor2D);
}

/**
 * Logits [N, vocab] of a tied head (h E^T) with the overridden rows' columns recomputed as
 * h rows^T: column v reads h rows[j] where v = ids[j].
 */
export function overrideTiedLogits(
  logits: tf.Tensor2D,
  hidden: tf.Tensor2D,
  o: EmbeddingOverride,
): tf.Tensor2D {
  return tf.tidy(() => {
    const vocab = logits.shape[1];
    const extra = tf.matMul(hidden, o.rows, false, true);
    const cols = selection(tf.range(0, vocab, 1, "int32") as tf.Tensor1D, o.ids);
    return tf.gather(tf.concat([logits, extra], 1), cols, 1) as tf.Tensor2D;
  });
}
