/**
 * Creating tfjs variables without leaking their initial tensor.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * A variable initialised from `make()`. `tf.variable(t)` shares t's data but leaves t alive as a
 * second tensor; building inside `tf.tidy` frees t while the variable (which tidy never tracks)
 * keeps the data. Unnamed on purpose: tfjs registers variable names globally.
 */
export function variableOf<R extends tf.Rank>(make: () => tf.Tensor<R>, trainable: boolean): tf.Variable<R> {
  return tf.tidy(() => tf.variable(make(), trainable));
}
