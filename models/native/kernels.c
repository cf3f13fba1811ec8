/*
 * peft-bench native kernels: fused float32 loops the tfjs wasm backend runs as several
 * single-threaded passes. Built by `deno task build-native` into libpeft_kernels.so and called
 * through Deno FFI on the wasm heap (models/native_kernels.ts). Plain C99, no dependencies
 * beyond libm; every kernel is deterministic (fixed summation order).
 */
#include <math.h>
#include <stdint.h>

/* ABI version: native_kernels.ts refuses a library built from an older kernels.c. */
int32_t peft_kernels_version(void) { return 1; }

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
