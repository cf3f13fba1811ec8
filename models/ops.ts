/**
 * The model's ops in the form each backend runs fastest: matmuls whose backward passes avoid
 * transposed-operand kernels on wasm, and fused ops (softmax cross-entropy, RMSNorm, SwiGLU,
 * RoPE) that run as one C kernel each way on the native backend when its kernels are built
 * (`native_kernels.ts`) and as tfjs graphs elsewhere.
 *
 * Why: tfjs' BatchMatMul gradient calls matMul with transposeA/transposeB set, and the wasm
 * backend runs those forms 4-25x slower than the plain one on this project's shapes (measured:
 * 1024x128x384 at 8.3 GFLOP/s plain, 1.0 with transposeB, 0.3 with transposeA). Transposing the
 * operand explicitly (a cheap copy) and calling the plain kernel made a frozen linear's
 * forward+backward 3.5x faster on wasm. Other backends handle transposed operands at full speed
 * (OpenBLAS takes them as flags), where the extra copies only cost time, so they use tfjs' own
 * matMul and gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  CAUSAL_SOFTMAX,
  CAUSAL_SOFTMAX_GRAD,
  hasKernel,
  RMS_NORM,
  RMS_NORM_GRAD,
  ROPE,
  runFused,
  SOFTMAX_XENT,
  SOFTMAX_XENT_GRAD,
  SWIGLU,
  SWIGLU_GRAD,
} from "./native_kernels.ts";

/** Whether the active backend gains from the transpose-free forms. */
function wantsLeanKernels(): boolean {
  return tf.getBackend() === "wasm";
}

/** Swap the last two axes. */
export function transposeLast<T extends tf.Tensor>(x: T): T {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(x, perm) as T;
}

/**
 * y = x W^T for a frozen weight W [out, in] (no gradient for W): forward x @ transpose(W),
 * backward dx = dy @ W, both with the plain kernel.
 */
export function frozenLinear(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  if (!wantsLeanKernels()) return tf.matMul(x, weight, false, true);
  const f = tf.customGrad(
    ((input: tf.Tensor) => ({
      value: tf.matMul(input as tf.Tensor2D, transposeLast(weight)),
      gradFunc: (dy: tf.Tensor) => [tf.matMul(dy as tf.Tensor2D, weight)],
    })) as AnyGradFunc,
  ) as (x: tf.Tensor) => tf.Tensor2D;
  return f(x);
}

/** y = x W^T for a weight W [out, in], through the fastest form for its trainability and backend. */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  const trainable = weight instanceof tf.Variable && weight.trainable;
  return trainable ? trainableLinear(x, weight) : frozenLinear(x, weight);
}

/**
 * y = x W^T for a trainable weight W [out, in]: on wasm with gradients dx = dy @ W and
 * dW = transpose(dy) @ x through the plain kernel; elsewhere tfjs' own matMul.
 */
export function trainableLinear(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  if (!wantsLeanKernels()) return tf.matMul(x, weight, false, true);
  const f = tf.customGrad(
    ((input: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
      save([input, w]);
      return {
        value: tf.matMul(input as tf.Tensor2D, transposeLast(w as tf.Tensor2D)),
        gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) => [
          tf.matMul(dy as tf.Tensor2D, ws as tf.Tensor2D),
          tf.matMul(transposeLast(dy as tf.Tensor2D), xs as tf.Tensor2D),
        ],
      };
    }) as AnyGradFunc,
  ) as (x: tf.Tensor, w: tf.Tensor) => tf.Tensor2D;
  return f(x, weight);
}

/**
 * a @ b for tensors of equal rank >= 2 and equal batch shape, with gradients
 * da = dy @ transpose(b) and db = transpose(a) @ dy, all with the plain kernel.
 */
export function matMulLean<T extends tf.Tensor>(a: T, b: T): T {
  if (!wantsLeanKernels()) return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D) as unknown as T;
  const f = tf.customGrad(
    ((x: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
      // Inputs must be saved: the caller's tidy may free them before the backward pass runs.
      save([x, y]);
      return {
        value: tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
          tf.matMul(dy as tf.Tensor3D, transposeLast(saved[1] as tf.Tensor3D)),
          tf.matMul(transposeLast(saved[0] as tf.Tensor3D), dy as tf.Tensor3D),
        ],
      };
    }) as AnyGradFunc,
  ) as (x: tf.Tensor, y: tf.Tensor) => T;
  return f(a, b);
}

/** a @ b^T (equal batch shapes), in the form the active backend runs fastest. */
export function matMulTransB<T extends tf.Tensor>(a: T, b: T): T {
  if (!wantsLeanKernels()) return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, false, true) as unknown as T;
  return matMulLean(a, transposeLast(b));
}

// deno-lint-ignore no-explicit-any
type AnyGradFunc = any;

/**
 * Shape and dtype checks before a fused kernel: the C kernels index raw memory, so a mismatch the
 * tfjs graph would broadcast or reject must fail here, in words, instead.
 */
function assertFusable(op: string, ok: boolean, detail: () => string): void {
  if (!ok) throw new Error(`${op}: ${detail()}`);
}

/**
 * Per-row softmax cross-entropy -log softmax(logits)[target] as one fused op: the forward pass
 * computes logsumexp(logits) - logits[target] and keeps softmax(logits), the backward pass
 * (softmax(logits) - onehot(target)) * dy. A target outside [0, vocab) contributes no picked term.
 * Why: the plain form (one-hot times logSoftmax) spent more time than the model's matmuls on the
 * [tokens, vocab] tensors of an LM step (tf.profile on the native backend); this form runs one
 * Exp pass instead of two, and the native backend's fused C kernel (when built) one pass each way.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, depth] = logits.shape;
  const ids = tf.cast(targets, "int32");
  const fused = hasKernel(SOFTMAX_XENT);
  if (fused) {
    assertFusable(
      "softmaxCrossEntropy",
      logits.dtype === "float32" && targets.shape[0] === rows,
      () =>
        `needs float32 logits [rows, vocab] and targets [rows], got [${logits.shape}] and [${targets.shape}]`,
    );
  }
  const f = tf.customGrad(
    ((x: tf.Tensor, save: tf.GradSaveFunc) => {
      let loss: tf.Tensor;
      let probs: tf.Tensor;
      if (fused) {
        [loss, probs] = runFused(SOFTMAX_XENT, { logits: x, targets: ids }) as tf.Tensor[];
      } else {
        const max = tf.max(x, 1, true);
        const e = tf.exp(tf.sub(x, max));
        const sum = tf.sum(e, 1, true);
        probs = tf.div(e, sum);
        const inRange = tf.logicalAnd(tf.greaterEqual(ids, 0), tf.less(ids, depth));
        const flat = tf.add(
          tf.mul(tf.range(0, rows, 1, "int32"), tf.scalar(depth, "int32")),
          tf.maximum(tf.minimum(ids, tf.scalar(depth - 1, "int32")), tf.scalar(0, "int32")),
        );
        const picked = tf.where(inRange, tf.gather(tf.reshape(x, [-1]), flat), tf.zeros([rows]));
        loss = tf.sub(tf.reshape(tf.add(tf.log(sum), max), [rows]), picked);
      }
      save([probs, ids]); // kept for the backward pass, after the caller's tidy freed them
      return {
        value: loss,
        gradFunc: (dy: tf.Tensor, [p, t]: tf.Tensor[]) => {
          if (fused) {
            return [runFused(SOFTMAX_XENT_GRAD, { probs: p, targets: t, dy }) as tf.Tensor];
          }
          const onehot = tf.cast(tf.oneHot(t as tf.Tensor1D, depth), "float32");
          return [tf.mul(tf.sub(p, onehot), tf.expandDims(dy, 1))];
        },
      };
    }) as AnyGradFunc,
  ) as (x: tf.Tensor) => tf.Tensor1D;
  return f(logits);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * gain. */
export function rmsNorm<T extends tf.Tensor>(x: T, gain: tf.Tensor, eps: number): T {
  if (!hasKernel(RMS_NORM)) {
    return tf.tidy(() => {
      const ms = tf.mean(tf.square(x), -1, true);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gain) as T;
    });
  }
  assertFusable(
    "rmsNorm",
    x.dtype === "float32" && gain.size === x.shape[x.rank - 1],
    () => `needs a float32 input and a gain per feature, got [${x.shape}] and [${gain.shape}]`,
  );
  const f = tf.customGrad(
    ((xs: tf.Tensor, g: tf.Tensor, save: tf.GradSaveFunc) => {
      const [y, rstd] = runFused(RMS_NORM, { x: xs, gain: g }, { eps }) as tf.Tensor[];
      save([xs, g, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, [sx, sg, sr]: tf.Tensor[]) =>
          runFused(RMS_NORM_GRAD, { x: sx, gain: sg, rstd: sr, dy }) as tf.Tensor[],
      };
    }) as AnyGradFunc,
  ) as (x: tf.Tensor, g: tf.Tensor) => T;
  return f(x, gain);
}

/** SwiGLU's gating: silu(gate) * up, silu(g) = g sigmoid(g). */
export function swiglu<T extends tf.Tensor>(gate: T, up: T): T {
  if (!hasKernel(SWIGLU)) return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as T);
  assertFusable(
    "swiglu",
    gate.dtype === "float32" && up.dtype === "float32" && tf.util.arraysEqual(gate.shape, up.shape),
    () => `needs float32 gate and up of one shape, got [${gate.shape}] and [${up.shape}]`,
  );
  const f = tf.customGrad(
    ((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
      save([g, u]);
      return {
        value: runFused(SWIGLU, { gate: g, up: u }) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, [sg, su]: tf.Tensor[]) =>
          runFused(SWIGLU_GRAD, { gate: sg, up: su, dy }) as tf.Tensor[],
      };
    }) as AnyGradFunc,
  ) as (g: tf.Tensor, u: tf.Tensor) => T;
  return f(gate, up);
}

const rotations = new Map<string, Float32Array>();

/**
 * The fixed matrix R [hd, hd] with rotate(x) = x R: each pair (a, b) maps to (-x_b, x_a); pairs
 * are (2i, 2i+1) when interleaved, else (i, i + hd/2).
 */
export function rotationMatrix(hd: number, interleaved: boolean): Float32Array {
  const key = `${hd}:${interleaved}`;
  let r = rotations.get(key);
  if (!r) {
    r = new Float32Array(hd * hd);
    for (let i = 0; i < hd / 2; i++) {
      const [a, b] = interleaved ? [2 * i, 2 * i + 1] : [i, i + hd / 2];
      r[b * hd + a] = -1; // out[a] = -x[b]
      r[a * hd + b] = 1; // out[b] = x[a]
    }
    rotations.set(key, r);
  }
  return r;
}

/**
 * Rotary position embedding of x [B, T, H, hd]: x cos + rotate(x) sin with tables [T, 1, hd]
 * (equal on both members of a pair), rotate as in {@link rotationMatrix}. Without the native
 * kernel, rotate is one small matmul by R (exact: R holds only 0 and +-1); tf.profile on wasm
 * measured it 2x cheaper than a reverse within pairs, and far cheaper than split/stack.
 */
export function rope<T extends tf.Tensor>(
  x: T,
  cos: tf.Tensor,
  sin: tf.Tensor,
  style: "interleaved" | "half",
): T {
  const interleaved = style === "interleaved";
  if (hasKernel(ROPE) && x.rank === 4) {
    const shape = x.shape as number[];
    const [t, hd] = [shape[1], shape[3]];
    assertFusable(
      "rope",
      x.dtype === "float32" && cos.size === t * hd && sin.size === t * hd,
      () => `needs float32 x [B, T, H, hd] and tables of T * hd values, got [${x.shape}], [${cos.shape}]`,
    );
    const f = tf.customGrad(
      ((xs: tf.Tensor, save: tf.GradSaveFunc) => {
        save([cos, sin]); // the caller's tables may be freed before the backward pass
        return {
          value: runFused(ROPE, { x: xs, cos, sin }, { interleaved, sign: 1 }) as tf.Tensor,
          // The rotation is orthogonal: its gradient rotates backwards.
          gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) => [
            runFused(ROPE, { x: dy, cos: c, sin: s }, { interleaved, sign: -1 }) as tf.Tensor,
          ],
        };
      }) as AnyGradFunc,
    ) as (x: tf.Tensor) => T;
    return f(x);
  }
  return tf.tidy(() => {
    const hd = x.shape[x.rank - 1];
    const r = tf.tensor2d(rotationMatrix(hd, interleaved), [hd, hd]);
    const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, hd]) as tf.Tensor2D, r), x.shape);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as T;
  });
}

/**
 * Attention probabilities softmax(scale * scores + mask) over the last axis of scores
 * [B, H, T, prefix + T]: `causalMask` [T, prefix + T] is the additive causal mask (0 or -1e9),
 * `keyMask` an optional additive padding mask broadcast over heads and queries. On the native
 * backend without a key mask this is one fused kernel each way (the mask is implied).
 */
export function causalSoftmax(
  scores: tf.Tensor4D,
  scale: number,
  causalMask: tf.Tensor,
  prefix: number,
  keyMask: tf.Tensor | null,
): tf.Tensor4D {
  if (keyMask || !hasKernel(CAUSAL_SOFTMAX)) {
    return tf.tidy(() => {
      let s = tf.add(tf.mul(scores, scale), causalMask);
      if (keyMask) s = tf.add(s, keyMask);
      return tf.softmax(s) as tf.Tensor4D;
    });
  }
  const [t, tk] = scores.shape.slice(2);
  assertFusable(
    "causalSoftmax",
    scores.dtype === "float32" && tk === t + prefix,
    () => `needs float32 scores [B, H, T, prefix + T] with prefix ${prefix}, got [${scores.shape}]`,
  );
  const f = tf.customGrad(
    ((x: tf.Tensor, save: tf.GradSaveFunc) => {
      const probs = runFused(CAUSAL_SOFTMAX, { scores: x }, { scale, prefix }) as tf.Tensor;
      save([probs]);
      return {
        value: probs,
        gradFunc: (dy: tf.Tensor, [p]: tf.Tensor[]) => [
          runFused(CAUSAL_SOFTMAX_GRAD, { probs: p, dy }, { scale }) as tf.Tensor,
        ],
      };
    }) as AnyGradFunc,
  ) as (x: tf.Tensor) => tf.Tensor4D;
  return f(scores);
}
