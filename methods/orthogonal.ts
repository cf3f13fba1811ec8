/**
 * Orthogonal building blocks shared by the rotation methods (OFT, BOFT): skew-symmetric matrices
 * from their strict upper triangle (PyTorch's `triu_indices(b, b, 1)` order, as PEFT stores them),
 * the exact Cayley transform and PEFT's truncated Cayley-Neumann series, a batched inverse with its
 * gradient, and block-wise products with a block-diagonal matrix.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Number of strict upper-triangle entries of a b x b matrix: b (b - 1) / 2. */
export function skewSize(b: number): number {
  return (b * (b - 1)) / 2;
}

/**
 * Indices into [0, v_0..v_{m-1}, -v_0..-v_{m-1}] that lay a vector v of m = b(b-1)/2 values out
 * as the skew-symmetric b x b matrix Q with Q[i][j] = v_k and Q[j][i] = -v_k for the k-th pair
 * (i < j) in row-major order, which is the order of `torch.triu_indices(b, b, 1)`.
 */
function skewGatherIndices(b: number): Int32Array {
  const m = skewSize(b);
  const idx = new Int32Array(b * b); // diagonal stays 0 (index 0 of the padded vector)
  let k = 0;
  for (let i = 0; i < b; i++) {
    for (let j = i + 1; j < b; j++) {
      idx[i * b + j] = 1 + k;
      idx[j * b + i] = 1 + m + k;
      k++;
    }
  }
  return idx;
}

/** Skew-symmetric matrices [n, b, b] from their strict upper triangles [n, b(b-1)/2]. */
export function skewSymmetric(vec: tf.Tensor2D, b: number): tf.Tensor3D {
  return tf.tidy(() => {
    const n = vec.shape[0];
    const padded = tf.concat([tf.zeros([n, 1]), vec, tf.neg(vec)], 1);
    const idx = tf.tensor1d(skewGatherIndices(b), "int32");
    return tf.reshape(tf.gather(padded, idx, 1), [n, b, b]) as tf.Tensor3D;
  });
}

/** Identity matrices [n, b, b]. */
function eyeBatch(n: number, b: number): tf.Tensor3D {
  return tf.tile(tf.expandDims(tf.eye(b), 0), [n, 1, 1]) as tf.Tensor3D;
}

/**
 * PEFT's Cayley-Neumann approximation (`OFTRotationModule._cayley_batch`, PEFT >= 0.18) of
 * (I + Q)(I - Q)^{-1} = I + 2 Q + 2 Q^2 + ..., transcribed from its loop: with k terms,
 * k = 1: I; k = 2: I + 2 Q; k >= 3: R = I + 2 (Q + ... + Q^{p-1}) + Q^p with p = max(3, k - 1)
 * (the last power has weight 1, as PEFT since 0.18; PEFT's loop makes k = 3 and k = 4 equal).
 * The default k = 5 gives I + 2 Q + 2 Q^2 + 2 Q^3 + Q^4.
 */
export function cayleyNeumann(q: tf.Tensor3D, terms: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, b] = q.shape;
    let r: tf.Tensor3D = eyeBatch(n, b);
    if (terms <= 1) return r;
    r = tf.add(r, tf.mul(q, 2));
    if (terms === 2) return r;
    const p = Math.max(3, terms - 1);
    let power: tf.Tensor3D = q;
    for (let k = 2; k <= p; k++) {
      power = tf.matMul(power, q);
      r = tf.add(r, k === p ? power : tf.mul(power, 2));
    }
    return r;
  });
}

/**
 * Inverses of a batch of square matrices [n, b, b]: Gauss-Jordan with partial pivoting in float64
 * on the CPU (the blocks are small), with the exact gradient dL/dA = -A^{-T} G A^{-T}. A singular
 * matrix is an error. tfjs has no matrix inverse or solve op, hence the custom gradient.
 */
export const batchInverse: (a: tf.Tensor3D) => tf.Tensor3D = tf.customGrad(
  (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    // customGrad appends its save function to the inputs.
    const a = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const [n, b] = a.shape;
    const src = a.dataSync();
    const out = new Float32Array(n * b * b);
    const m = new Float64Array(b * 2 * b);
    for (let t = 0; t < n; t++) {
      // [A | I] reduced to [I | A^{-1}].
      m.fill(0);
      for (let i = 0; i < b; i++) {
        for (let j = 0; j < b; j++) m[i * 2 * b + j] = src[t * b * b + i * b + j];
        m[i * 2 * b + b + i] = 1;
      }
      for (let c = 0; c < b; c++) {
        let p = c;
        for (let i = c + 1; i < b; i++) if (Math.abs(m[i * 2 * b + c]) > Math.abs(m[p * 2 * b + c])) p = i;
        if (Math.abs(m[p * 2 * b + c]) < 1e-12) throw new Error("batchInverse: singular matrix");
        if (p !== c) {
          for (let j = 0; j < 2 * b; j++) {
            const tmp = m[c * 2 * b + j];
            m[c * 2 * b + j] = m[p * 2 * b + j];
            m[p * 2 * b + j] = tmp;
          }
        }
        const piv = m[c * 2 * b + c];
        for (let j = 0; j < 2 * b; j++) m[c * 2 * b + j] /= piv;
        for (let i = 0; i < b; i++) {
          const f = m[i * 2 * b + c];
          if (i === c || f === 0) continue;
          for (let j = 0; j < 2 * b; j++) m[i * 2 * b + j] -= f * m[c * 2 * b + j];
        }
      }
      for (let i = 0; i < b; i++) {
        for (let j = 0; j < b; j++) out[t * b * b + i * b + j] = m[i * 2 * b + b + j];
      }
    }
    const inv = tf.tensor3d(out, [n, b, b]);
    save([inv]);
    return {
      value: inv,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const s = saved[0] as tf.Tensor3D;
        return tf.neg(tf.matMul(tf.matMul(s, dy as tf.Tensor3D, true, false), s, false, true));
      },
    };
  },
) as unknown as (a: tf.Tensor3D) => tf.Tensor3D;

/**
 * The exact Cayley transform as PEFT computes it (`torch.linalg.solve(I + Q, I - Q, left=False)`):
 * R = (I - Q)(I + Q)^{-1} = 2 (I + Q)^{-1} - I (the two factors commute). For skew-symmetric Q,
 * I + Q is invertible and R is orthogonal with det 1.
 */
export function cayleyExact(q: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, b] = q.shape;
    const eye = eyeBatch(n, b);
    return tf.sub(tf.mul(batchInverse(tf.add(eye, q)), 2), eye);
  });
}

/**
 * x [N, nb b] times the block-diagonal matrix diag(R_0, ..., R_{nb-1}) of blocks r [nb, b, b]
 * (or of their transposes when `transposeR`), block by block: row i of the result is
 * [x_i,blk0 R_0, x_i,blk1 R_1, ...]. PEFT's OFT forward is this product (`einsum('...rk,rkc->...rc')`).
 */
export function blockDiagRight(x: tf.Tensor2D, r: tf.Tensor3D, transposeR = false): tf.Tensor2D {
  return tf.tidy(() => {
    const [rows, cols] = x.shape;
    const [nb, b] = r.shape;
    if (nb * b !== cols) throw new Error(`blockDiagRight: ${nb} blocks of ${b} do not cover ${cols} columns`);
    const xb = tf.transpose(tf.reshape(x, [rows, nb, b]), [1, 0, 2]) as tf.Tensor3D;
    const y = tf.matMul(xb, r, false, transposeR);
    return tf.reshape(tf.transpose(y, [1, 0, 2]), [rows, cols]) as tf.Tensor2D;
  });
}

/** The dense block-diagonal matrix [nb b, nb b] of blocks r [nb, b, b] (tests, diagnostics). */
export function blockDiagonal(r: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const [nb, b] = r.shape;
    return blockDiagRight(tf.eye(nb * b) as tf.Tensor2D, r);
  });
}
