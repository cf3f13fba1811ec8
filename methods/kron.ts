/**
 * Kronecker-product pieces shared by LoKr and KronA: the factor sizes (LyCORIS / PEFT
 * `factorization()` semantics), the product applied to rows without materialising it, and the
 * dense product for merging and diagnostics.
 *
 * Layout: with W1 [a, b] and W2 [c, d], kron(W1, W2) is [a c, b d] with entry
 * (i c + k, j d + l) = W1[i, j] W2[k, l]. For one input row x (length b d) viewed as X [b, d]
 * (row-major, so x[j d + l] = X[j, l]), kron(W1, W2) x = vec(W1 X W2^T) (row-major vec), the
 * "vec trick": two small matmuls instead of one [a c, b d] matrix.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";

/**
 * Split `dimension` into m * n with m <= n, as LyCORIS's and PEFT's `factorization(dimension,
 * factor)`: with `factor > 0` dividing the dimension, (factor, dimension / factor) (not reordered);
 * otherwise walk the divisors m upward from 1 and keep the last one with m < n (and m <= factor when
 * factor > 0), i.e. the pair closest to sqrt(dimension) for factor -1. 256 -> (16, 16),
 * 128 -> (8, 16), 127 -> (1, 127), 24 -> (4, 6), (128, factor 4) -> (4, 32).
 */
export function factorization(dimension: number, factor = -1): [number, number] {
  if (factor > 0 && dimension % factor === 0) return [factor, dimension / factor];
  const limit = factor === -1 ? dimension : factor;
  let m = 1;
  let n = dimension;
  while (m < n) {
    let next = m + 1;
    while (dimension % next !== 0) next++;
    if (next > limit) break;
    m = next;
    n = dimension / next;
  }
  return m > n ? [n, m] : [m, n];
}

/** The `decomposeFactor` option of the Kronecker methods (PEFT `decompose_factor`). */
export const decomposeFactorOption = z.number().int().refine((f) => f === -1 || f > 0, {
  message: "must be -1 (closest to sqrt) or a positive integer",
}).default(-1);

/** Kronecker factor shapes of a [out, in] layer: left [outL, inM] (the smaller), right [outK, inN]. */
export interface KronShape {
  left: [number, number];
  right: [number, number];
}

/** Factor shapes for a layer: out = outL outK and in = inM inN, each split by {@link factorization}. */
export function kronShape(outFeatures: number, inFeatures: number, factor: number): KronShape {
  const [outL, outK] = factorization(outFeatures, factor);
  const [inM, inN] = factorization(inFeatures, factor);
  return { left: [outL, inM], right: [outK, inN] };
}

/**
 * Rows x [N, b d] times kron(W1, W2)^T -> [N, a c], without building the product. W2 is given as
 * the list of its factors in product order (`[W2]`, or `[B, A]` for W2 = B A), so a low-rank right
 * factor costs N b d r + N b r c instead of N b d c.
 */
export function kronMatMul(x: tf.Tensor2D, w1: tf.Tensor2D, w2Factors: tf.Tensor2D[]): tf.Tensor2D {
  const [a, b] = w1.shape;
  const n = x.shape[0];
  const d = x.shape[1] / b;
  // X W2^T for every (row, j): [N b, d] -> [N b, c].
  let t = tf.reshape(x, [n * b, d]) as tf.Tensor2D;
  for (let i = w2Factors.length - 1; i >= 0; i--) t = tf.matMul(t, w2Factors[i], false, true);
  const c = t.shape[1];
  // W1 over j: [N, b, c] -> [N, c, b] -> [N c, a] -> [N, c, a] -> [N, a, c].
  const tj = tf.reshape(tf.transpose(tf.reshape(t, [n, b, c]), [0, 2, 1]), [n * c, b]) as tf.Tensor2D;
  const u = tf.matMul(tj, w1, false, true);
  return tf.reshape(tf.transpose(tf.reshape(u, [n, c, a]), [0, 2, 1]), [n, a * c]);
}

/** The dense product kron(W1, W2) [a c, b d] by broadcasting (W1[i, j] W2[k, l] at (i, k, j, l)). */
export function kronDense(w1: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  const [a, b] = w1.shape;
  const [c, d] = w2.shape;
  return tf.reshape(tf.mul(tf.reshape(w1, [a, 1, b, 1]), tf.reshape(w2, [1, c, 1, d])), [a * c, b * d]);
}
