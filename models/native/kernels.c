/*
 * peft-bench native kernels: fused float32 loops the tfjs wasm backend runs as several
 * single-threaded passes. Built by `deno task build-native` into libpeft_kernels.so and called
 * through Deno FFI on the wasm heap (models/native_kernels.ts). Plain C99, no dependencies
 * beyond libm; every kernel is deterministic (fixed summation order).
 */
#include <math.h>
#include <stdint.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/*
 * FNV-1a hash of this file's text, passed in by `deno task build-native`: native_kernels.ts
 * refuses a library built from any other version of kernels.c (a stale build after an update).
 */
#ifndef PEFT_KERNELS_SOURCE_HASH
#define PEFT_KERNELS_SOURCE_HASH 0u
#endif
uint32_t peft_kernels_source_hash(void) { return PEFT_KERNELS_SOURCE_HASH; }

/*
 * Hands freed multi-megabyte buffers back to the system at once. glibc raises its mmap threshold
 * each time such a block is freed (up to 32 MiB); later blocks below it come from the heap arena
 * and stay resident after they are freed. The per-layer temporaries of quantizing and evaluating a
 * real-size model (decoded weights, codes, activations copied out of the heap: 1-60 MB each) then
 * piled up: a Qwen3-0.6B QLoRA run peaked at 4.2 GB RSS, 2.8 GB with the threshold fixed at glibc's
 * default 128 KiB (which turns the adjustment off). Returns 1 when set, 0 off glibc.
 */
int32_t peft_malloc_fixed_mmap_threshold(void) {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#else
  return 0;
#endif
}

/*
 * Copies the C string src (at most cap - 1 bytes) into dst, NUL-terminated; returns the bytes copied.
 * Lets Deno read a string another library returns (OpenBLAS's core name) without the unrestricted
 * `--allow-ffi` that Deno's pointer views require.
 */
int32_t peft_copy_cstring(const char *src, char *dst, int32_t cap) {
  int32_t n = 0;
  if (cap <= 0) return 0;
  if (src) {
    while (n < cap - 1 && src[n]) {
      dst[n] = src[n];
      n++;
    }
  }
  dst[n] = 0;
  return n;
}

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

/*
 * RMSNorm over the last axis of x [rows, d]: y = x * r * gain with r = 1/sqrt(mean(x^2) + eps);
 * r is written out for the backward pass.
 */
void peft_rms_norm_fwd(const float *x, const float *gain, int32_t rows, int32_t d, float eps, float *y,
                       float *rstd) {
  for (int32_t i = 0; i < rows; i++) {
    const float *xi = x + (int64_t)i * d;
    float *yi = y + (int64_t)i * d;
    float ss = 0.0f;
    for (int32_t j = 0; j < d; j++) ss += xi[j] * xi[j];
    const float r = 1.0f / sqrtf(ss / d + eps);
    rstd[i] = r;
    for (int32_t j = 0; j < d; j++) yi[j] = xi[j] * r * gain[j];
  }
}

/*
 * Gradients of RMSNorm: dx_j = r g_j dy_j - x_j r^3 / d * sum_k dy_k g_k x_k, and
 * dgain_j = sum over rows of dy_j x_j r.
 */
void peft_rms_norm_bwd(const float *x, const float *gain, const float *rstd, const float *dy, int32_t rows,
                       int32_t d, float *dx, float *dgain) {
  for (int32_t j = 0; j < d; j++) dgain[j] = 0.0f;
  for (int32_t i = 0; i < rows; i++) {
    const float *xi = x + (int64_t)i * d;
    const float *dyi = dy + (int64_t)i * d;
    float *dxi = dx + (int64_t)i * d;
    const float r = rstd[i];
    float dot = 0.0f;
    for (int32_t j = 0; j < d; j++) dot += dyi[j] * gain[j] * xi[j];
    const float c = dot * r * r * r / d;
    for (int32_t j = 0; j < d; j++) {
      dxi[j] = r * gain[j] * dyi[j] - xi[j] * c;
      dgain[j] += dyi[j] * xi[j] * r;
    }
  }
}

/* SwiGLU's gate: h = silu(g) * u with silu(g) = g * sigmoid(g). */
void peft_swiglu_fwd(const float *g, const float *u, int32_t n, float *h) {
  for (int32_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* dg = dh * u * s (1 + g (1 - s)) with s = sigmoid(g); du = dh * g * s. */
void peft_swiglu_bwd(const float *g, const float *u, const float *dh, int32_t n, float *dg, float *du) {
  for (int32_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + expf(-g[i]));
    dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    du[i] = dh[i] * g[i] * s;
  }
}

/*
 * Rotary position embedding of x [batch, t, heads, hd]: each pair (a, b) of a head at position p
 * becomes (x_a cos - x_b sin, x_b cos + x_a sin) with cos/sin [t, hd] (equal on a and b). Pairs
 * are (2i, 2i+1) when interleaved, else (i, i + hd/2). sign = -1 rotates backwards, which is the
 * gradient (the rotation is orthogonal).
 */
void peft_rope(const float *x, const float *cos_t, const float *sin_t, int32_t batch, int32_t t,
               int32_t heads, int32_t hd, int32_t interleaved, float sign, float *out) {
  const int32_t half = hd / 2;
  for (int32_t bi = 0; bi < batch; bi++) {
    for (int32_t p = 0; p < t; p++) {
      const float *c = cos_t + (int64_t)p * hd;
      const float *s = sin_t + (int64_t)p * hd;
      for (int32_t h = 0; h < heads; h++) {
        const int64_t base = (((int64_t)bi * t + p) * heads + h) * hd;
        const float *xi = x + base;
        float *oi = out + base;
        for (int32_t i = 0; i < half; i++) {
          const int32_t a = interleaved ? 2 * i : i;
          const int32_t b = interleaved ? 2 * i + 1 : i + half;
          const float sn = sign * s[a];
          oi[a] = xi[a] * c[a] - xi[b] * sn;
          oi[b] = xi[b] * c[a] + xi[a] * sn;
        }
      }
    }
  }
}

/*
 * Causal attention softmax over scores [rows, tk] where row r is query position i = r % t and
 * the first `prefix` keys are a prefix every query sees: p[r, j] = softmax_j(scale * s[r, j]) over
 * the keys j <= prefix + i, and 0 for the later (masked) keys.
 */
void peft_causal_softmax_fwd(const float *s, int32_t rows, int32_t t, int32_t tk, int32_t prefix, float scale,
                             float *p) {
  for (int32_t r = 0; r < rows; r++) {
    const float *sr = s + (int64_t)r * tk;
    float *pr = p + (int64_t)r * tk;
    const int32_t visible = prefix + r % t + 1;
    float max = sr[0] * scale;
    for (int32_t j = 1; j < visible; j++) max = sr[j] * scale > max ? sr[j] * scale : max;
    float sum = 0.0f;
    for (int32_t j = 0; j < visible; j++) {
      pr[j] = expf(sr[j] * scale - max);
      sum += pr[j];
    }
    const float inv = 1.0f / sum;
    for (int32_t j = 0; j < visible; j++) pr[j] *= inv;
    for (int32_t j = visible; j < tk; j++) pr[j] = 0.0f;
  }
}

/* Its gradient: ds[r, j] = scale * p[r, j] * (dp[r, j] - sum_k dp[r, k] p[r, k]). */
void peft_causal_softmax_bwd(const float *p, const float *dp, int32_t rows, int32_t tk, float scale, float *ds) {
  for (int32_t r = 0; r < rows; r++) {
    const float *pr = p + (int64_t)r * tk;
    const float *dpr = dp + (int64_t)r * tk;
    float *dsr = ds + (int64_t)r * tk;
    float dot = 0.0f;
    for (int32_t j = 0; j < tk; j++) dot += dpr[j] * pr[j];
    for (int32_t j = 0; j < tk; j++) dsr[j] = scale * pr[j] * (dpr[j] - dot);
  }
}

/*
 * Frozen weights stored outside the wasm heap (models/stored.ts) in their checkpoint precision:
 * dtype 0 = float32, 1 = float16 bits, 2 = bfloat16 bits. Both decodes are exact (every float16 and
 * bfloat16 value is a float32 value), so a decoded tile equals the widened weight bit for bit.
 * Built from bit patterns, not float arithmetic, so -ffast-math cannot change them.
 */
static float peft_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      /* Subnormal half m * 2^-24: normalise the mantissa into a float32 exponent. */
      uint32_t m = mant;
      int32_t e = -1;
      do {
        m <<= 1;
        e++;
      } while ((m & 0x400u) == 0);
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  union {
    uint32_t u;
    float f;
  } v;
  v.u = bits;
  return v.f;
}

static void peft_decode_run(const void *src, int32_t dtype, int64_t n, float *dst) {
  if (dtype == 0) {
    const float *s = (const float *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = s[i];
  } else if (dtype == 1) {
    const uint16_t *s = (const uint16_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = peft_f16_to_f32(s[i]);
  } else {
    const uint16_t *s = (const uint16_t *)src;
    uint32_t *d = (uint32_t *)dst;
    for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)s[i] << 16;
  }
}

/* dst[0..n) = float32 values of the n stored elements at src (a block of rows of a frozen weight). */
void peft_decode(const void *src, int32_t dtype, int32_t n, float *dst) { peft_decode_run(src, dtype, n, dst); }

/*
 * Embedding lookup from a stored table [*, cols]: dst row i = decoded row ids[i]. The caller has
 * checked every id against the table's row count.
 */
void peft_gather_decode(const void *src, int32_t dtype, int32_t cols, const int32_t *ids, int32_t n, float *dst) {
  const int64_t elem = dtype == 0 ? 4 : 2;
  for (int32_t i = 0; i < n; i++) {
    const char *row = (const char *)src + (int64_t)ids[i] * cols * elem;
    peft_decode_run(row, dtype, cols, dst + (int64_t)i * cols);
  }
}

/*
 * Quantized frozen weights (methods/quant, QuantizedLinear): decode elements [start, start + n) of
 * the flattened [out, in] weight into dst, reading the packed buffers the scheme's `pack` built
 * (pack.ts: field i of `bits` bits sits at bit offset bits * (i mod (32 / bits)) of int32 word
 * i / (32 / bits), little-endian, so 4-bit field i is the low nibble of byte i / 2 when i is even,
 * and 8-bit field i is byte i). The code tables and block constants come from TypeScript (the
 * scheme's `nativeDecode`), never from this file. Every value is the reference decoder's
 * (`dequantizeRows`) bit for bit: one float32 product per element.
 *
 * absmax4 (nf4, fp4, int4): w_i = table[k_i] * s_b, b = i / block_size, with s_b from `scales`.
 */
static void peft_absmax4_block(const uint8_t *packed, const float *table, float s, int64_t i0, int64_t i1,
                               float *dst) {
  for (int64_t i = i0; i < i1; i++) dst[i - i0] = table[(packed[i >> 1] >> ((i & 1) << 2)) & 15u] * s;
}

void peft_decode_absmax4(const uint8_t *packed, const float *table, const float *scales, int32_t block_size,
                         int32_t start, int32_t n, float *dst) {
  const int64_t end = (int64_t)start + n;
  for (int64_t b = start / block_size; b * block_size < end; b++) {
    const int64_t i0 = b * block_size > start ? b * block_size : start;
    const int64_t i1 = (b + 1) * block_size < end ? (b + 1) * block_size : end;
    peft_absmax4_block(packed, table, scales[b], i0, i1, dst + (i0 - start));
  }
}

/*
 * absmax4 with QLoRA's double quantization: s_b = fround(fround(dq_table[c_b] * S_g) + mean),
 * c_b the 8-bit code of block b, g = b / dq_block. The product is stored through a volatile so it
 * is rounded to float32 before the add on every target (no fused multiply-add under -ffast-math),
 * as the reference rounds it.
 */
void peft_decode_absmax4_dq(const uint8_t *packed, const float *table, const uint8_t *scale_codes,
                            const float *dq_table, const float *group_scales, int32_t dq_block, float mean,
                            int32_t block_size, int32_t start, int32_t n, float *dst) {
  const int64_t end = (int64_t)start + n;
  for (int64_t b = start / block_size; b * block_size < end; b++) {
    volatile float v = dq_table[scale_codes[b]] * group_scales[b / dq_block];
    const float s = v + mean;
    const int64_t i0 = b * block_size > start ? b * block_size : start;
    const int64_t i1 = (b + 1) * block_size < end ? (b + 1) * block_size : end;
    peft_absmax4_block(packed, table, s, i0, i1, dst + (i0 - start));
  }
}

/* Row-wise int8 (int8): rows [row, row + count) of w = (c - 128) * s_row, c the byte of each element. */
void peft_decode_rowwise_int8(const uint8_t *packed, const float *scales, int32_t cols, int32_t row, int32_t count,
                              float *dst) {
  for (int32_t r = 0; r < count; r++) {
    const float s = scales[row + r];
    const uint8_t *c = packed + (int64_t)(row + r) * cols;
    float *d = dst + (int64_t)r * cols;
    for (int32_t j = 0; j < cols; j++) d[j] = (float)((int32_t)c[j] - 128) * s;
  }
}

/*
 * Affine per-group codes (hqq2/3/4, gptq3/4; methods/quant/schemes/common.ts affineRows): rows
 * [row, row + count) of w = (c - z) * s, two float32 roundings as the reference (the difference,
 * then the product; no fused multiply-add can form from a subtraction feeding a product). c is the
 * bits-bit field of element i = r * cols + j (bits 2, 3 or 4: 16, 10 or 8 fields per int32 word,
 * the top 2 bits of a 3-bit word unused), (s, z) = (scales, zeros)[r * groups + g] with g =
 * group_index[j] when has_group_index (GPTQ act-order's g_idx; the caller checked each g <
 * groups), else j / block_size (a short last group when cols % block_size != 0).
 */
void peft_decode_affine(const uint32_t *words, int32_t bits, const float *scales, const float *zeros,
                        const int32_t *group_index, int32_t has_group_index, int32_t cols, int32_t block_size,
                        int32_t row, int32_t count, float *dst) {
  const int32_t per = 32 / bits;
  const uint32_t mask = (1u << bits) - 1u;
  const int64_t groups = ((int64_t)cols + block_size - 1) / block_size;
  for (int32_t r = 0; r < count; r++) {
    const int64_t first = (int64_t)(row + r) * cols;
    const float *s = scales + (int64_t)(row + r) * groups;
    const float *z = zeros + (int64_t)(row + r) * groups;
    float *d = dst + (int64_t)r * cols;
    int64_t w = first / per;
    int32_t k = (int32_t)(first - w * per);
    uint32_t word = words[w] >> (k * bits);
    int64_t g = 0;
    int64_t group_end = block_size;
    for (int32_t j = 0; j < cols; j++) {
      if (has_group_index) {
        g = group_index[j];
      } else if (j == group_end) {
        g++;
        group_end += block_size;
      }
      const float diff = (float)(word & mask) - z[g];
      d[j] = diff * s[g];
      word >>= bits;
      if (++k == per && j + 1 < cols) {
        k = 0;
        word = words[++w];
      }
    }
  }
}
