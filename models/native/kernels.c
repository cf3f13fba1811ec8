/*
 * peft-bench native kernels: fused float32 loops the tfjs wasm backend runs as several
 * single-threaded passes. Built by `deno task build-native` into libpeft_kernels.so and called
 * through Deno FFI on the wasm heap (models/native_kernels.ts). Plain C99, no dependencies
 * beyond libm; every kernel is deterministic (fixed summation order).
 */
#include <math.h>
#include <stdint.h>

/* ABI version: native_kernels.ts refuses a library built from an older kernels.c. */
int32_t peft_kernels_version(void) { return 2; }

/*
 * Softmax cross-entropy per row of logits [rows, cols]:
 * loss[r] = logsumexp(x[r]) - x[r, t[r]] (the picked term is 0 when t[r] is outside [0, cols)),
 * probs[r] = softmax(x[r]) (kept for the backward pass).
 */
void peft_softmax_xent_fwd(const float *logits, const int32_t *targets, int32_t rows, int32_t cols,
                           float *loss, float *probs) {
  for (int32_t r = 0; r < rows; r++) {
    const float *x = logits + (int64_t)r * cols;
    float *p = probs + (int64_t)r * cols;
    float max = x[0];
    for (int32_t j = 0; j < cols; j++) max = x[j] > max ? x[j] : max;
    float sum = 0.0f;
    for (int32_t j = 0; j < cols; j++) {
      p[j] = expf(x[j] - max);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (int32_t j = 0; j < cols; j++) p[j] *= inv;
    const int32_t t = targets[r];
    const float picked = (t >= 0 && t < cols) ? x[t] : 0.0f;
    loss[r] = max + logf(sum) - picked;
  }
}

/* Gradient of the above: dx[r] = (probs[r] - onehot(t[r])) * dy[r]. */
void peft_softmax_xent_bwd(const float *probs, const int32_t *targets, const float *dy, int32_t rows,
                           int32_t cols, float *dx) {
  for (int32_t r = 0; r < rows; r++) {
    const float *p = probs + (int64_t)r * cols;
    float *g = dx + (int64_t)r * cols;
    const float d = dy[r];
    for (int32_t j = 0; j < cols; j++) g[j] = p[j] * d;
    const int32_t t = targets[r];
    if (t >= 0 && t < cols) g[t] -= d;
  }
}

/* sum of g[i]^2 (for the global gradient norm), accumulated in double. */
float peft_sum_squares(const float *g, int32_t n) {
  double s = 0.0;
  for (int32_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  return (float)s;
}

/*
 * One AdamW update of n parameters (bench/optim.ts has the same formula as a tfjs graph):
 * g' = scale g; m' = b1 m + (1-b1) g'; v' = b2 v + (1-b2) g'^2;
 * w' = w - lr ((m'/c1) / (sqrt(v'/c2) + eps) + wd w), with c1 = 1-b1^t, c2 = 1-b2^t.
 * hyper = {lr, b1, b2, eps, wd, c1, c2}; scale is read from a tensor (the clipping factor).
 */
void peft_adamw(const float *w, const float *g, const float *m, const float *v, const float *scale,
                const float *hyper, int32_t n, float *w_out, float *m_out, float *v_out) {
  const float lr = hyper[0], b1 = hyper[1], b2 = hyper[2], eps = hyper[3], wd = hyper[4];
  const float c1 = hyper[5], c2 = hyper[6], s = scale[0];
  for (int32_t i = 0; i < n; i++) {
    const float gi = g[i] * s;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m_out[i] = mi;
    v_out[i] = vi;
    w_out[i] = w[i] - lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * w[i]);
  }
}
