/**
 * An independent reader of Hugging Face PEFT exports, for tests: from `adapter_config.json`, the
 * exported tensors and a base model's Hugging Face state dict alone, it rebuilds what PEFT computes
 * and returns the adapted weights (plus the `score` head of a sequence-classification export, and
 * the prompts of the prompt-side types, run through its own forward {@link peftLogits}). It is
 * written from PEFT's sources (tuners/lora/layer.py and dora.py, tuners/adalora/layer.py and
 * model.py, tuners/vera/layer.py, tuners/{oft,hra,boft,road,delora,miss,vblora,trainable_tokens,c3a,shira,randlora,tinylora}/layer.py
 * and config.py, tuners/shira/model.py, tuners/c3a/utils.py, tuners/adaption_prompt/{layer,utils,config,model}.py,
 * tuners/tinylora/model.py, tuners/p_tuning/model.py, peft_model.py `get_prompt` and `PeftModelForCausalLM.forward`,
 * tuners/tuners_utils.py `check_target_module_exists`, config.py `from_peft_type`,
 * utils/save_and_load.py, utils/other.py `ModulesToSaveWrapper`), never from this project's method
 * code (it imports nothing from `methods/` but types), so a test that compares its logits with a
 * run's adapted model checks the export against PEFT's formulas, not against itself.
 *
 * What PEFT computes per wrapped linear layer (dropout 0, no merged state; the forward is affine in
 * x, so the merged weight below is exactly PEFT's forward):
 * - LORA: W + s B A with s = lora_alpha / r, or lora_alpha / sqrt(r) with `use_rslora`
 *   (`LoraLayer.update_layer`); bias unchanged (`bias: "none"`).
 * - LORA with `use_dora`: (m / ||W + s B A||_row) ⊙ (W + s B A), the norm taken over the input
 *   dimension per output row (`DoraLinearLayer.get_weight_norm`, dim=1), bias unchanged.
 * - ADALORA: W + B (A ⊙ E) · lora_alpha / (ranknum + 1e-5) (`SVDLinear.forward`), ranknum = init_r
 *   even after a `rank_pattern` resize (`resize_modules_by_rank_pattern` copies it back).
 * - VERA: W + (λ_b ⊙ B[:out, :]) (λ_d ⊙ A[:, :in]) with the shared `vera_A` [r, max in] and
 *   `vera_B` [max out, r] sliced per layer (`vera/layer.py Linear.forward`).
 * - OFT (>= 0.18) and HRA: the input rotated block-wise / by Householder reflections, W R^T and
 *   W H (see {@link oftMerged}, {@link hraMerged}).
 * - BOFT: diag(boft_s) W M^T with M the product of butterfly-permuted block-diagonal Cayley factors
 *   (PEFT with its fbd CUDA extension, which any factor count > 1 needs), bias unchanged
 *   ({@link boftMerged}).
 * - ROAD: the output (bias included) rotated and scaled in pairs (k, k + g/2) of each group of g,
 *   road_1/2/4 ({@link roadColumns}): W' = R W and b' = R b.
 * - DELORA: W + B diag(lambda / r / (|a_i| |b_i|)) A diag(delora_w_norm) ({@link deloraMerged}).
 * - MISS: the shard miss_block tiled over the inputs (default and mini) or bat's W_ac B_a + B_a per
 *   r x r block ({@link missMerged}).
 * - TRAINABLE_TOKENS: rows `token_indices` of the embedding replaced by `trainable_tokens_delta`
 *   (a tied head reads the same table; {@link trainableTokensMerged}).
 * - VBLORA: W + B A with A, B cut into sub-vectors, each the softmax over its top-k logits mixing
 *   rows of the shared `vblora_vector_bank` ({@link vbloraMerged}; `save_only_topk_weights` false).
 * - C3A: W + dW with dW's columns PEFT's block-circular convolution (FFT) of the unit vectors,
 *   divided by in_features ({@link c3aMerged}; a naive DFT, not the circulant index formula).
 * - SHIRA: W + dW with dW zero but at (`shira_indices`[0][k], `shira_indices`[1][k]), which hold
 *   `shira_weight`[k] (scaling 1.0; PEFT's `get_delta_weight` sparse COO, duplicates summed); the
 *   indices come from the file (`ShiraModel._remap_adapter_state_dict_for_load`, `.to(torch.int)`),
 *   and `shira_weight` must have r (in + out) values (`ShiraLayer.update_layer`).
 * - RANDLORA: W + (alpha / r) M, or M^T when in > out, M = UB UA [hi, lo] from the shared
 *   `randlora_A` [r, 1, LO] and `randlora_B` [HI, N, r] (LO, HI from the elementwise largest
 *   (out, in) of the wrapped modules, `RandLoraModel._find_dim`; N = ceil(LO / r)) sliced to the
 *   layer's lo, hi and n = ceil(lo / r): UA = (lambda[:, :, None] A[:, :, :lo] gamma[None]) flattened
 *   over (r, n), UB = B[:hi, :n, :] flattened over (n, r) (`randlora/layer.py get_scaled_bases`).
 * - TINYLORA: W + B (sum_i v_i P_i) A from the saved `tinylora_A` [r, in], `tinylora_B` [out, r],
 *   `tinylora_P` [u, r, r] (`save_projection`) and the shared `base_model.tinylora_v.{g}` [u], g
 *   from `weight_tying` over the wrapped modules in model order ({@link tinyloraGroup}).
 * - ADAPTION_PROMPT and P_TUNING change the forward, not a weight: the reader returns their prompts
 *   ({@link promptSide}) and runs the model itself, from transformers' formulas ({@link peftLogits}).
 * - `modules_to_save` (SEQ_CLS): the saved copy of `score` replaces the model's head.
 *
 * PEFT wraps the modules `check_target_module_exists` selects: a string `target_modules` is a
 * regular expression matched in full; a list matches a module name exactly or as a dotted suffix,
 * restricted by `layers_to_transform` (with `layers_pattern`) to those layer indices. Every wrapped
 * module must come with its tensors and every tensor must belong to a wrapped module (PEFT would
 * warn and keep its own init for the first, drop the second); the reader throws on both, and on any
 * config field that changes the function and that it does not model. Keys a type's config class
 * lacks are dropped first, as PEFT drops them ({@link CONFIG_FIELDS}: RoAd has no
 * `layers_to_transform`).
 * @module
 */
import { join } from "node:path";
import { readSafetensorsFile } from "../models/safetensors.ts";
import type { NamedArray } from "./types.ts";

/** An `adapter_config.json` and the tensors of `adapter_model.safetensors`, by PEFT key. */
export interface PeftFiles {
  config: Record<string, unknown>;
  tensors: Map<string, NamedArray>;
}

/** What PEFT computes from an export on a base: adapted weights by HF name, and a SEQ_CLS head. */
export interface PeftApplied {
  /** The base state dict with every wrapped linear's weight replaced by the adapted one. */
  weights: Map<string, NamedArray>;
  /** The wrapped modules, as PEFT names them inside the base model (`model.layers.0.self_attn.q_proj`). */
  wrapped: string[];
  /** `score.weight` [classes, hidden] from `modules_to_save` (task_type SEQ_CLS), when present. */
  score?: NamedArray;
  /**
   * P-tuning: the virtual-token embeddings [p, dim] PEFT prepends to every sequence's input
   * embeddings. The weights are the base's: run the model with {@link peftLogits}.
   */
  prompt?: NamedArray;
  /**
   * Adaption prompt: per adapted decoder layer, its prompt [L, dim] and gate, which PEFT's
   * `AdaptedAttention` adds to that layer's attention. The weights are the base's: run the model
   * with {@link peftLogits}.
   */
  adaptionPrompts?: Map<number, { prompt: NamedArray; gate: number }>;
}

/** Read an exported adapter folder (`adapter_config.json` + `adapter_model.safetensors`). */
export async function readPeftFolder(dir: string): Promise<PeftFiles> {
  const config = JSON.parse(await Deno.readTextFile(join(dir, "adapter_config.json")));
  const { tensors } = await readSafetensorsFile(join(dir, "adapter_model.safetensors"));
  const out = new Map<string, NamedArray>();
  for (const [k, t] of tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`adapter tensor ${k} is not float32`);
    out.set(k, { data: t.data, shape: t.shape });
  }
  return { config, tensors: out };
}

/**
 * PEFT's `check_target_module_exists` for a module `key` of the base model (tuners_utils.py):
 * regex string matched in full, or list entries equal to the key or a dotted suffix of it, then
 * `layers_to_transform` on the layer index found by `layers_pattern` (default: the number after
 * any `name.`).
 */
export function peftTargets(config: Record<string, unknown>, key: string): boolean {
  const targets = config.target_modules;
  if (typeof targets === "string") return new RegExp(`^(?:${targets})$`).test(key);
  if (!Array.isArray(targets)) throw new Error("target_modules must be a string or a list");
  if (targets.includes(key)) return true;
  if (!targets.some((t) => key.endsWith(`.${t}`))) return false;
  const indexes = config.layers_to_transform;
  const using = indexes !== null && indexes !== undefined &&
    (Array.isArray(indexes) ? indexes.length > 0 : true);
  if (!using) return true;
  const patterns = config.layers_pattern === null || config.layers_pattern === undefined ||
      (config.layers_pattern as string | string[]).length === 0
    ? ["[^.]*"]
    : [config.layers_pattern].flat() as string[];
  let index: number | null = null;
  for (const p of patterns) {
    // Python's re.match anchors at the start only.
    const m = new RegExp(`^.*\\.${p}\\.(\\d+)\\.`).exec(key);
    if (m) {
      index = Number(m[1]);
      break;
    }
  }
  if (index === null) return false;
  return typeof indexes === "number" ? index === indexes : (indexes as number[]).includes(index);
}

/** Fail unless a config field that changes the function has the value the reader models. */
function expect(config: Record<string, unknown>, key: string, ok: (v: unknown) => boolean): void {
  if (!ok(config[key])) throw new Error(`reader does not model ${key} = ${JSON.stringify(config[key])}`);
}

const empty = (v: unknown) =>
  v === undefined || v === null || (typeof v === "object" && Object.keys(v!).length === 0);

/**
 * TinyLoRA's group of a wrapped module (`tinylora/model.py _create_and_replace`): the T wrapped
 * modules indexed in the model's module order (decoder layer, then q, k, v, o, gate, up, down, as
 * transformers' Llama/Qwen layers register them: `_build_target_key_mapping`), G = max(1,
 * round(T (1 - weight_tying))) with Python's half-to-even round, size = max(1, T // G), group
 * min(index // size, G - 1).
 */
function tinyloraGroup(config: Record<string, unknown>, wrapped: string[], key: string): number {
  const order = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
  ];
  const rank = (k: string) => {
    const m = /\.layers\.(\d+)\.(.+)$/.exec(k);
    if (!m || !order.includes(m[2])) throw new Error(`tinylora: no module order known for ${k}`);
    return Number(m[1]) * order.length + order.indexOf(m[2]);
  };
  const sorted = [...wrapped].sort((x, y) => rank(x) - rank(y));
  const t = sorted.length;
  const x = t * (1 - (config.weight_tying as number ?? 0));
  const f = Math.floor(x);
  const g = Math.max(1, x - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x));
  const size = Math.max(1, Math.floor(t / g));
  return Math.min(Math.floor(sorted.indexOf(key) / size), g - 1);
}

/** Row-major product [m, k] x [k, n] in float64. */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      if (x === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += x * b[p * n + j];
    }
  }
  return out;
}

/** Dense row-major [n, n] identity. */
function eye(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

/** Solve X (I + Q) = (I - Q) for X by Gauss-Jordan on the transposed system (float64). */
function cayleyExactBlock(q: Float64Array, n: number): Float64Array {
  // X (I + Q) = I - Q  <=>  (I + Q)^T X^T = (I - Q)^T.
  const a = new Float64Array(n * n);
  const rhs = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      a[i * n + j] = (i === j ? 1 : 0) + q[j * n + i];
      rhs[i * n + j] = (i === j ? 1 : 0) - q[j * n + i];
    }
  }
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[p * n + c])) p = r;
    for (let j = 0; j < n; j++) {
      [a[c * n + j], a[p * n + j]] = [a[p * n + j], a[c * n + j]];
      [rhs[c * n + j], rhs[p * n + j]] = [rhs[p * n + j], rhs[c * n + j]];
    }
    const d = a[c * n + c];
    for (let j = 0; j < n; j++) {
      a[c * n + j] /= d;
      rhs[c * n + j] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r * n + c];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        a[r * n + j] -= f * a[c * n + j];
        rhs[r * n + j] -= f * rhs[c * n + j];
      }
    }
  }
  // rhs = X^T.
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) x[i * n + j] = rhs[j * n + i];
  return x;
}

/**
 * PEFT OFT (>= 0.18, `OFTRotationModule`): each row of `oft_R.weight` fills the strict upper
 * triangle (torch.triu_indices order) of M, Q = M - M^T; with `coft` Q is first projected onto
 * ||Q||_F <= eps / sqrt(rows); R = I + 2Q + 2Q^2 + ... + 2Q^(n-2) + Q^(n-1) for n Cayley-Neumann
 * terms, else R = (I - Q)(I + Q)^-1 (`torch.linalg.solve(I + Q, I - Q, left=False)`). The forward
 * rotates each input block as x_blk R (einsum "...rk,rkc->...rc"), so y = W R_diag^T x + b and the
 * merged weight is W R_diag^T, with R_diag the block diagonal (one R repeated with block_share).
 */
function oftMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  oftR: NamedArray,
  key: string,
): Float64Array {
  expect(config, "module_dropout", (v) => v === undefined || v === 0);
  expect(config, "oft_scaled", (v) => v === undefined || v === false);
  expect(config, "oft_cans", (v) => v === undefined || v === false);
  const [out, inF] = w.shape;
  const [rows, nEl] = oftR.shape;
  const bs = (1 + Math.sqrt(1 + 8 * nEl)) / 2;
  const nb = config.block_share ? inF / bs : rows;
  if (!Number.isInteger(bs) || nb * bs !== inF || (config.block_share && rows !== 1)) {
    throw new Error(`${key}: oft_R.weight [${oftR.shape}] does not fit in_features ${inF}`);
  }
  const blocks: Float64Array[] = [];
  for (let b = 0; b < rows; b++) {
    let q = new Float64Array(bs * bs);
    let k = 0;
    for (let i = 0; i < bs; i++) {
      for (let j = i + 1; j < bs; j++) {
        q[i * bs + j] = oftR.data[b * nEl + k];
        q[j * bs + i] = -oftR.data[b * nEl + k];
        k++;
      }
    }
    if (config.coft) {
      const eps = (config.eps as number) / Math.sqrt(rows);
      const norm = Math.sqrt(q.reduce((sum, x) => sum + x * x, 0));
      if (norm > eps) q = q.map((x) => (eps * x) / norm);
    }
    let r: Float64Array;
    if (config.use_cayley_neumann) {
      const terms = config.num_cayley_neumann_terms as number;
      r = eye(bs);
      let power = eye(bs);
      for (let p = 1; p < terms; p++) {
        power = matmul(power, q, bs, bs, bs);
        const coef = p === terms - 1 && p > 1 ? 1 : 2;
        for (let i = 0; i < r.length; i++) r[i] += coef * power[i];
      }
    } else {
      r = cayleyExactBlock(q, bs);
    }
    blocks.push(r);
  }
  // W' [out, in]: W'[o, blk*bs + c] = sum_k W[o, blk*bs + k] R[c, k].
  const merged = new Float64Array(out * inF);
  for (let blk = 0; blk < nb; blk++) {
    const r = blocks[config.block_share ? 0 : blk];
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < bs; c++) {
        let acc = 0;
        for (let k = 0; k < bs; k++) acc += w.data[o * inF + blk * bs + k] * r[c * bs + k];
        merged[o * inF + blk * bs + c] = acc;
      }
    }
  }
  return merged;
}

/**
 * PEFT HRA (`HRALinear.get_delta_weight`, forward W' = W H): with `apply_GS` the columns of
 * hra_u [in, r] are Gram-Schmidt orthonormalised into U and H = I - 2 U U^T; otherwise each column
 * is normalised and H = prod_i (I - 2 u_i u_i^T), i = 0..r-1 in order.
 */
function hraMerged(config: Record<string, unknown>, w: NamedArray, u: NamedArray, key: string): Float64Array {
  const [out, inF] = w.shape;
  const [n, r] = u.shape;
  if (n !== inF || r !== config.r) {
    throw new Error(`${key}: hra_u [${u.shape}] does not fit [${inF}, r ${config.r}]`);
  }
  const cols: Float64Array[] = [];
  for (let i = 0; i < r; i++) {
    let v = Float64Array.from({ length: n }, (_, j) => u.data[j * r + i]);
    if (config.apply_GS) {
      for (const q of cols) {
        const dot = q.reduce((sum, x, j) => sum + x * v[j], 0);
        v = v.map((x, j) => x - dot * q[j]);
      }
    }
    const norm = Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
    cols.push(v.map((x) => x / norm));
  }
  let h = eye(n);
  if (config.apply_GS) {
    for (const q of cols) {
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) h[a * n + b] -= 2 * q[a] * q[b];
    }
  } else {
    for (const q of cols) {
      // H <- H - 2 (H u) u^T.
      const hu = new Float64Array(n);
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) hu[a] += h[a * n + b] * q[b];
      h = h.map((x, idx) => x - 2 * hu[Math.floor(idx / n)] * q[idx % n]);
    }
  }
  return matmul(w.data, h, out, inF, inF);
}

/**
 * PEFT's `block_butterfly_perm(n, b, r, n_butterfly_factor)` (boft/layer.py): identity without
 * extra factors; otherwise every run of n / b indices is reordered by `sort_block`, which lists its
 * r-index chunks evens first, then odds (chunk 0, 2, 4, ..., 1, 3, 5, ...).
 */
export function boftButterflyPerm(n: number, b: number, r: number, extraFactors: number): number[] {
  const indices = Array.from({ length: n }, (_, i) => i);
  if (extraFactors === 0) return indices;
  if (b * r * 2 > n) throw new Error(`BOFT: invalid number of blocks ${b} for n ${n}, r ${r}`);
  const blockSize = Math.floor(n / b);
  const step = blockSize / r;
  const chunks: number[] = [];
  for (let p = 0; p < step; p += 2) chunks.push(p);
  for (let p = 1; p < step; p += 2) chunks.push(p);
  const sorted: number[] = [];
  chunks.forEach((pos) => {
    for (let k = 0; k < r; k++) sorted.push(pos * r + k);
  });
  for (let i = 0; i < n; i += blockSize) {
    const tmp = indices.slice(i, i + blockSize);
    for (let k = 0; k < blockSize; k++) indices[i + k] = tmp[sorted[k]];
  }
  return indices;
}

/**
 * PEFT BOFT (`boft/layer.py Linear.forward`, with the fbd CUDA extension that builds every
 * butterfly factor): each boft_R[i, d] (a full bs x bs matrix) gives S = (A - A^T)/2 and the Cayley
 * block (I - S)(I + S)^-1 (`cayley_batch`); factor i is P_i blockdiag(...) P_i^T with P_i the
 * permutation matrix of {@link boftButterflyPerm}(in, nb / 2^i, bs / 2, N - 1) (`perm2mat`:
 * P[row, idx[row]] = 1); M = F_{N-1} ... F_1 F_0. The forward is base(x M) with the bias taken out,
 * scaled by boft_s [out, 1] and put back, so W' = diag(s) W M^T and the bias is unchanged.
 * Block sizes follow `update_layer`: one of boft_block_size / boft_block_num is 0 and the other
 * divides in_features.
 */
function boftMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  boftR: NamedArray,
  boftS: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  const size = config.boft_block_size as number;
  const num = config.boft_block_num as number;
  if ((size !== 0) === (num !== 0)) throw new Error(`${key}: exactly one of boft_block_size/num must be set`);
  const bs = size !== 0 ? size : inF / num;
  const nb = size !== 0 ? inF / size : num;
  const nFactors = config.boft_n_butterfly_factor as number;
  const [fR, nbR, h1, h2] = boftR.shape;
  if (
    !Number.isInteger(bs) || !Number.isInteger(nb) || fR !== nFactors || nbR !== nb || h1 !== bs ||
    h2 !== bs
  ) {
    throw new Error(`${key}: boft_R [${boftR.shape}] does not fit [${nFactors}, ${nb}, ${bs}, ${bs}]`);
  }
  if (boftS.shape.length !== 2 || boftS.shape[0] !== out || boftS.shape[1] !== 1) {
    throw new Error(`${key}: boft_s [${boftS.shape}] is not [${out}, 1]`);
  }
  let m = eye(inF);
  for (let f = 0; f < nFactors; f++) {
    // Block-diagonal factor D [in, in] of the nb Cayley blocks.
    const d = new Float64Array(inF * inF);
    for (let blk = 0; blk < nb; blk++) {
      const off = (f * nb + blk) * bs * bs;
      const s = new Float64Array(bs * bs);
      for (let i = 0; i < bs; i++) {
        for (let j = 0; j < bs; j++) {
          s[i * bs + j] = 0.5 * (boftR.data[off + i * bs + j] - boftR.data[off + j * bs + i]);
        }
      }
      const q = cayleyExactBlock(s, bs);
      for (let i = 0; i < bs; i++) {
        for (let j = 0; j < bs; j++) d[(blk * bs + i) * inF + blk * bs + j] = q[i * bs + j];
      }
    }
    // P D P^T with P[row, idx[row]] = 1: (P D P^T)[a, b] = D[idx[a], idx[b]].
    const idx = boftButterflyPerm(inF, nb / 2 ** f, bs / 2, nFactors - 1);
    const factor = new Float64Array(inF * inF);
    for (let a = 0; a < inF; a++) {
      for (let b = 0; b < inF; b++) factor[a * inF + b] = d[idx[a] * inF + idx[b]];
    }
    m = matmul(factor, m, inF, inF, inF);
  }
  // W' = diag(s) W M^T: W'[o, c] = s_o sum_k W[o, k] M[c, k].
  const merged = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < inF; c++) {
      let acc = 0;
      for (let k = 0; k < inF; k++) acc += w.data[o * inF + k] * m[c * inF + k];
      merged[o * inF + c] = boftS.data[o] * acc;
    }
  }
  return merged;
}

/**
 * PEFT RoAd's coefficient columns (`road/layer.py _prepare_cols`) for out outputs in groups of g:
 * road_1 one (theta, alpha) per position of a half group, shared by both halves; road_2 one per
 * output; road_4 per group 2g values, the first g for the cosine column, the last g for the sine.
 */
function roadColumns(
  variant: string,
  g: number,
  theta: Float32Array,
  alpha: Float32Array,
  out: number,
): { c1: Float64Array; c2: Float64Array } {
  const c1 = new Float64Array(out);
  const c2 = new Float64Array(out);
  for (let e = 0; e < out; e++) {
    const grp = Math.floor(e / g);
    const pos = e % g;
    if (variant === "road_1") {
      const p = grp * (g / 2) + (pos % (g / 2));
      c1[e] = alpha[p] * Math.cos(theta[p]);
      c2[e] = alpha[p] * Math.sin(theta[p]);
    } else if (variant === "road_2") {
      c1[e] = alpha[e] * Math.cos(theta[e]);
      c2[e] = alpha[e] * Math.sin(theta[e]);
    } else if (variant === "road_4") {
      const p1 = grp * 2 * g + pos;
      const p2 = p1 + g;
      c1[e] = alpha[p1] * Math.cos(theta[p1]);
      c2[e] = alpha[p2] * Math.sin(theta[p2]);
    } else {
      throw new Error(`reader does not model RoAd variant ${JSON.stringify(variant)}`);
    }
  }
  return { c1, c2 };
}

/**
 * PEFT RoAd (`_apply_road`, applied to the base layer's output, bias included): y = c1 ⊙ h +
 * c2 ⊙ rotate_half(h), rotate_half taken per group of g outputs as [-h_second, h_first]. Linear in
 * h, so the row map R acts on weight rows and bias alike (PEFT's `merge`: R W, R b).
 */
function roadApplyRows(
  rows: ArrayLike<number>,
  width: number,
  c1: Float64Array,
  c2: Float64Array,
  g: number,
): Float64Array {
  const out = c1.length;
  const res = new Float64Array(out * width);
  for (let e = 0; e < out; e++) {
    const first = e % g < g / 2;
    const partner = first ? e + g / 2 : e - g / 2;
    const sign = first ? -1 : 1;
    for (let j = 0; j < width; j++) {
      res[e * width + j] = c1[e] * rows[e * width + j] + sign * c2[e] * rows[partner * width + j];
    }
  }
  return res;
}

/**
 * PEFT DeLoRA (`DeloraLayer._compute_delta`): W + B diag(lambda / r / (|a_i| |b_i|)) A diag(w_norm),
 * |a_i| the norm of A's row i and |b_i| of B's column i, each clamped below at 1e-4; lambda is the
 * saved trainable `delora_lambda` and w_norm the saved persistent buffer `delora_w_norm` [in].
 */
function deloraMerged(
  r: number,
  w: NamedArray,
  a: NamedArray,
  b: NamedArray,
  lambda: NamedArray,
  wNorm: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  if (
    a.shape[0] !== r || a.shape[1] !== inF || b.shape[0] !== out || b.shape[1] !== r ||
    lambda.data.length !== 1 || wNorm.data.length !== inF
  ) {
    throw new Error(
      `${key}: delora_A [${a.shape}] / delora_B [${b.shape}] / delora_lambda [${lambda.shape}] / ` +
        `delora_w_norm [${wNorm.shape}] do not fit r ${r} and [${out}, ${inF}]`,
    );
  }
  const scale = new Float64Array(r);
  for (let i = 0; i < r; i++) {
    let an = 0;
    for (let j = 0; j < inF; j++) an += a.data[i * inF + j] ** 2;
    let bn = 0;
    for (let o = 0; o < out; o++) bn += b.data[o * r + i] ** 2;
    scale[i] = lambda.data[0] / r / (Math.max(Math.sqrt(an), 1e-4) * Math.max(Math.sqrt(bn), 1e-4));
  }
  const merged = Float64Array.from(w.data);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < r; i++) {
      const f = b.data[o * r + i] * scale[i];
      if (f === 0) continue;
      for (let j = 0; j < inF; j++) merged[o * inF + j] += f * a.data[i * inF + j] * wNorm.data[j];
    }
  }
  return merged;
}

/**
 * PEFT MiSS (`miss/layer.py MissLinear.forward`), by `init_weights`:
 * - True/False (MiSS): y = base(x) + sum over r-chunks of x (zero-padded to a multiple of r) @ M,
 *   M = miss_block [r, out], so W'[o, j] = W[o, j] + M[j mod r, o];
 * - "mini": M [r, mini_r] repeated out / mini_r times along the outputs, W'[o, j] += M[j mod r, o mod mini_r];
 * - "bat": blocks B_a = miss_block[a] [r, r] per output block a; every r x r block W_ac gains
 *   W_ac B_a + B_a (`get_delta_weight`, W reshaped [out/r, r, in/r, r]).
 */
function missMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  block: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  const r = config.r as number;
  const init = config.init_weights;
  const merged = Float64Array.from(w.data);
  if (init === "bat") {
    const nOut = out / r;
    if (inF % r !== 0 || out % r !== 0 || block.shape.join() !== [nOut, r, r].join()) {
      throw new Error(
        `${key}: miss_block [${block.shape}] does not fit bat blocks of ${r} on [${out}, ${inF}]`,
      );
    }
    for (let a = 0; a < nOut; a++) {
      for (let c = 0; c < inF / r; c++) {
        for (let i = 0; i < r; i++) {
          for (let j = 0; j < r; j++) {
            let acc = block.data[(a * r + i) * r + j];
            for (let k = 0; k < r; k++) {
              acc += w.data[(a * r + i) * inF + c * r + k] * block.data[(a * r + k) * r + j];
            }
            merged[(a * r + i) * inF + c * r + j] += acc;
          }
        }
      }
    }
    return merged;
  }
  let cols: number;
  if (init === "mini") {
    cols = config.mini_r as number;
    if (out % cols !== 0) throw new Error(`${key}: out_features ${out} not divisible by mini_r ${cols}`);
  } else if (init === true || init === false) {
    cols = out;
  } else {
    throw new Error(`reader does not model init_weights = ${JSON.stringify(init)}`);
  }
  if (block.shape.length !== 2 || block.shape[0] !== r || block.shape[1] !== cols) {
    throw new Error(`${key}: miss_block [${block.shape}] is not [${r}, ${cols}]`);
  }
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < inF; j++) merged[o * inF + j] += block.data[(j % r) * cols + (o % cols)];
  }
  return merged;
}

/**
 * PEFT VB-LoRA (`vblora/layer.py Linear._get_low_rank_matrix`): each row of logits [..., h] picks
 * its top-k logits (torch.topk), softmaxes them and mixes those bank rows: [..., b].
 */
function vbloraMix(logits: NamedArray, bank: NamedArray, topk: number): Float64Array {
  const [h, len] = bank.shape;
  const rows = logits.data.length / h;
  const out = new Float64Array(rows * len);
  for (let row = 0; row < rows; row++) {
    const z = Array.from(logits.data.subarray(row * h, (row + 1) * h));
    const top = z.map((v, i) => [v, i]).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, topk);
    const max = top[0][0];
    const e = top.map(([v]) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    top.forEach(([, i], t) => {
      for (let c = 0; c < len; c++) out[row * len + c] += (e[t] / sum) * bank.data[i * len + c];
    });
  }
  return out;
}

/**
 * PEFT VB-LoRA (`_get_lora_matrices`, `forward`): A = mix(logits_A [r, in/b, h]) reshaped [r, in];
 * B = mix(logits_B [out/b, r, h]) [out/b, r, b] transposed to [out/b, b, r] and reshaped [out, r];
 * W' = W + B A (no scale). The bank `base_model.vblora_vector_bank` [h, b] is shared.
 */
function vbloraMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  logitsA: NamedArray,
  logitsB: NamedArray,
  bank: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  const r = config.r as number;
  const [h, len] = bank.shape;
  if (
    h !== config.num_vectors || len !== config.vector_length ||
    logitsA.shape.join() !== [r, inF / len, h].join() || logitsB.shape.join() !== [out / len, r, h].join()
  ) {
    throw new Error(
      `${key}: vblora_logits_A [${logitsA.shape}] / vblora_logits_B [${logitsB.shape}] / bank [${bank.shape}] ` +
        `do not fit r ${r} and [${out}, ${inF}]`,
    );
  }
  const topk = config.topk as number;
  const a = vbloraMix(logitsA, bank, topk); // [r, in/b, b] = [r, in]
  const subB = vbloraMix(logitsB, bank, topk); // [out/b, r, b]
  const b = new Float64Array(out * r);
  for (let blk = 0; blk < out / len; blk++) {
    for (let k = 0; k < r; k++) {
      for (let c = 0; c < len; c++) b[(blk * len + c) * r + k] = subB[(blk * r + k) * len + c];
    }
  }
  const ba = matmul(b, a, out, r, inF);
  return Float64Array.from(w.data, (x, i) => x + ba[i]);
}

/**
 * PEFT trainable tokens (`TrainableTokensLayer.get_merged_weights`): the wrapped weight with rows
 * `token_indices` replaced by `trainable_tokens_delta` (index_copy, not added); on a tied model the
 * head is wrapped with the embedding's adapter (`tied_adapter`), so it reads the same rows.
 */
function trainableTokensMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  delta: NamedArray,
  key: string,
): Float64Array {
  const ids = config.token_indices as number[];
  const [rows, dim] = w.shape;
  if (delta.shape.join() !== [ids.length, dim].join() || ids.some((t) => t >= rows)) {
    throw new Error(
      `${key}: trainable_tokens_delta [${delta.shape}] does not fit ${ids.length} tokens of ${rows}`,
    );
  }
  const merged = Float64Array.from(w.data);
  ids.forEach((t, j) => merged.set(delta.data.subarray(j * dim, (j + 1) * dim), t * dim));
  return merged;
}

/**
 * The discrete Fourier transform of a real or complex vector as torch.fft computes it, in float64:
 * fft(a)[k] = sum_j a[j] e^(-2 pi i j k / n); the inverse (ifft) uses e^(+...) and divides by n.
 */
function dft(re: Float64Array, im: Float64Array, inverse: boolean): [Float64Array, Float64Array] {
  const n = re.length;
  const sign = inverse ? 1 : -1;
  const outRe = new Float64Array(n);
  const outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const angle = (sign * 2 * Math.PI * j * k) / n;
      const [c, s] = [Math.cos(angle), Math.sin(angle)];
      outRe[k] += re[j] * c - im[j] * s;
      outIm[k] += re[j] * s + im[j] * c;
    }
    if (inverse) {
      outRe[k] /= n;
      outIm[k] /= n;
    }
  }
  return [outRe, outIm];
}

/**
 * PEFT C3A (`c3a/layer.py C3ALinear.forward`, `c3a/utils.py BlockCircularConvolution`): x split into
 * n blocks of b, output block m = fft(sum_n ifft(x_n) * fft(w[m, n])).real, the whole divided by
 * x.size(-1) = in_features and added to the base output (bias unchanged). The forward is linear in
 * x, so dW's column j is that map applied to the unit vector e_j (what `get_circulant_fast` builds
 * from an identity); the block size is `block_size_pattern`'s entry whose key matches the module
 * (`re.match(".*\.{key}$")`), else `block_size` (`C3AModel._create_and_replace`).
 */
function c3aMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  kernel: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  const patterns = (config.block_size_pattern ?? {}) as Record<string, number>;
  const hit = Object.keys(patterns).find((p) => new RegExp(`^.*\\.${p}$`).test(key));
  const b = hit === undefined ? config.block_size as number : patterns[hit];
  const [nOut, nIn] = [out / b, inF / b];
  if (
    !Number.isInteger(nOut) || !Number.isInteger(nIn) || kernel.shape.join() !== [nOut, nIn, b].join()
  ) {
    throw new Error(
      `${key}: c3a_kernel [${kernel.shape}] is not [${nOut}, ${nIn}, ${b}] for block size ${b}`,
    );
  }
  // fft(w[m, n]) for every kernel block.
  const zeros = new Float64Array(b);
  const kernelFft = Array.from(
    { length: nOut * nIn },
    (_, mn) => dft(Float64Array.from(kernel.data.subarray(mn * b, (mn + 1) * b)), zeros, false),
  );
  const merged = Float64Array.from(w.data);
  for (let j = 0; j < inF; j++) {
    // ifft of each input block of e_j.
    const blocks = Array.from({ length: nIn }, (_, n) => {
      const x = new Float64Array(b);
      if (Math.floor(j / b) === n) x[j % b] = 1;
      return dft(x, zeros, true);
    });
    for (let m = 0; m < nOut; m++) {
      const accRe = new Float64Array(b);
      const accIm = new Float64Array(b);
      for (let n = 0; n < nIn; n++) {
        const [xr, xi] = blocks[n];
        const [kr, ki] = kernelFft[m * nIn + n];
        for (let k = 0; k < b; k++) {
          accRe[k] += xr[k] * kr[k] - xi[k] * ki[k];
          accIm[k] += xr[k] * ki[k] + xi[k] * kr[k];
        }
      }
      const [yRe] = dft(accRe, accIm, false);
      for (let s = 0; s < b; s++) merged[(m * b + s) * inF + j] += yRe[s] / inF;
    }
  }
  return merged;
}

/**
 * The prompt-side types, which PEFT applies in the forward pass instead of to a linear layer's
 * weight (null for every other type):
 * - ADAPTION_PROMPT (`adaption_prompt/model.py AdaptionPromptModel.add_adapter`): the modules whose
 *   name ends in `.{target_modules}` (`prepare_config`'s default `self_attn` for llama/mistral), in
 *   model order, of which the last `adapter_layers` are wrapped (an error when there are fewer);
 *   each carries `adaption_prompt` [1, adapter_len, hidden] and `adaption_gate` [1], saved under
 *   `base_model.model.{module}` (`_get_adapter_state_dict` keeps the keys ending in `adaption_*`).
 * - P_TUNING (`p_tuning/model.py PromptEncoder`, `peft_model.py get_prompt`): loaded for inference
 *   (`from_pretrained`'s default `is_trainable=False` sets `inference_mode`), the encoder is its
 *   `embedding` alone, loaded from the bare key `prompt_embeddings`
 *   (`BasePromptEncoder._load_adapter_state_dict`), and `get_prompt` returns that weight as is:
 *   [num_virtual_tokens * num_transformer_submodules, token_dim], no MLP or LSTM applied.
 */
function promptSide(
  config: Record<string, unknown>,
  base: Map<string, NamedArray>,
  take: (key: string) => NamedArray,
): Pick<PeftApplied, "wrapped" | "prompt" | "adaptionPrompts"> | null {
  const hidden = base.get("model.embed_tokens.weight")!.shape[1];
  if (config.peft_type === "ADAPTION_PROMPT") {
    const target = (config.target_modules ?? "self_attn") as string;
    const len = config.adapter_len as number;
    const count = config.adapter_layers as number;
    // Module names from the state dict's parameter keys, in model (layer) order.
    const names: string[] = [];
    for (const k of base.keys()) {
      const m = new RegExp(`^(.*\\.${target})\\.`).exec(k);
      if (m && !names.includes(m[1])) names.push(m[1]);
    }
    const layerOf = (n: string) => Number(/\.layers\.(\d+)\./.exec(`${n}.`)?.[1]);
    names.sort((a, b) => layerOf(a) - layerOf(b));
    if (names.length < count) {
      throw new Error(
        `Config specifies more adapter layers '${count}' than the model has '${names.length}'.`,
      );
    }
    const wrapped = names.slice(names.length - count);
    const adaptionPrompts = new Map<number, { prompt: NamedArray; gate: number }>();
    for (const n of wrapped) {
      const prompt = take(`base_model.model.${n}.adaption_prompt`);
      const gate = take(`base_model.model.${n}.adaption_gate`);
      if (prompt.shape.join() !== [1, len, hidden].join() || gate.shape.join() !== "1") {
        throw new Error(
          `${n}: adaption_prompt [${prompt.shape}] / adaption_gate [${gate.shape}] are not [1, ${len}, ${hidden}] / [1]`,
        );
      }
      adaptionPrompts.set(layerOf(n), {
        prompt: { data: prompt.data, shape: [len, hidden] },
        gate: gate.data[0],
      });
    }
    return { wrapped, adaptionPrompts };
  }
  if (config.peft_type === "P_TUNING") {
    expect(config, "task_type", (v) => v === "CAUSAL_LM");
    const submodules = (config.num_transformer_submodules ?? 1) as number;
    const total = (config.num_virtual_tokens as number) * submodules;
    const prompt = take("prompt_embeddings");
    if (config.token_dim !== hidden || prompt.shape.join() !== [total, hidden].join()) {
      throw new Error(
        `prompt_embeddings [${prompt.shape}] / token_dim ${config.token_dim} do not fit ${total} virtual tokens of ${hidden}`,
      );
    }
    return { wrapped: [], prompt };
  }
  return null;
}

/** x [rows, in] (float64) through a linear layer of the state dict: x W^T (+ its bias when present). */
function hfLinear(state: Map<string, NamedArray>, name: string, x: Float64Array, rows: number): Float64Array {
  const w = state.get(`${name}.weight`);
  if (!w) throw new Error(`base lacks ${name}.weight`);
  const [out, inF] = w.shape;
  const b = state.get(`${name}.bias`);
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let acc = b ? b.data[o] : 0;
      for (let j = 0; j < inF; j++) acc += x[r * inF + j] * w.data[o * inF + j];
      y[r * out + o] = acc;
    }
  }
  return y;
}

/** Hugging Face's RMSNorm over each run of `width` values: x / sqrt(mean(x^2) + eps) * weight. */
function hfRmsNorm(x: Float64Array, weight: NamedArray, eps: number, width: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / width; r++) {
    let ms = 0;
    for (let j = 0; j < width; j++) ms += x[r * width + j] ** 2;
    const inv = 1 / Math.sqrt(ms / width + eps);
    for (let j = 0; j < width; j++) y[r * width + j] = x[r * width + j] * inv * weight.data[j];
  }
  return y;
}

/**
 * Rotate-half RoPE (transformers' `apply_rotary_pos_emb`, default rope type) on rows [T, heads, hd]
 * at positions 0..T-1: x cos + rotate_half(x) sin, inv_freq_i = theta^(-2i / hd), cos/sin repeated
 * over both halves.
 */
function hfRope(x: Float64Array, t: number, heads: number, hd: number, theta: number): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let pos = 0; pos < t; pos++) {
    for (let h = 0; h < heads; h++) {
      const o = (pos * heads + h) * hd;
      for (let d = 0; d < hd; d++) {
        const angle = pos * theta ** (-(2 * (d % half)) / hd);
        const rot = d < half ? -x[o + d + half] : x[o + d - half];
        y[o + d] = x[o + d] * Math.cos(angle) + rot * Math.sin(angle);
      }
    }
  }
  return y;
}

/** Softmax of a float64 row. */
function softmaxRow(z: number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * The logits [B * T, vocab] (float64) of a Hugging Face `LlamaForCausalLM`, `Qwen2ForCausalLM` or
 * `Qwen3ForCausalLM` (`config.json` object `hf`) with PEFT's adapter applied, on token ids [B][T],
 * written from transformers' modeling files and PEFT's forward, independently of this project's
 * model: embeddings; per layer RMSNorm, q/k/v (+ their biases), Qwen3's per-head q/k RMSNorm,
 * rotate-half RoPE, causal grouped-query softmax attention (kv head h / (heads / kv heads)), o_proj,
 * residual, RMSNorm, down(silu(gate) * up), residual; final RMSNorm; lm_head (the embedding when
 * tied). PEFT's prompt-side additions:
 * - P_TUNING (`PeftModelForCausalLM.forward`): the prompt is concatenated before the word
 *   embeddings, position ids are left to the model (0..p+T-1 over prompt and tokens), no mask;
 *   the logits of the T real positions are returned (PEFT's outputs also hold the p prompt rows).
 * - ADAPTION_PROMPT (`AdaptedAttention.forward`, llama/mistral model types only, as
 *   `prepare_config` raises for others): the layer's attention output plus
 *   o_proj(gate * softmax(q K^T / sqrt(hd)) V), K = k_proj(P), V = v_proj(P) viewed as
 *   heads / factor heads (factor = k_proj in / out) and repeat_interleave'd by factor, q recomputed
 *   by `llama_compute_query_states` (q_proj of the attention input, RoPE at the tokens' positions).
 */
export function peftLogits(
  hf: Record<string, unknown>,
  applied: PeftApplied,
  ids: number[][],
): Float64Array {
  const type = String(hf.model_type);
  if (!["llama", "qwen2", "qwen3"].includes(type)) throw new Error(`reader's forward does not model ${type}`);
  if (applied.adaptionPrompts && !["llama", "mistral"].includes(type)) {
    throw new Error(`Unsupported model type for adaption prompt: '${type}'.`);
  }
  expect(hf, "rope_scaling", (v) => v === undefined || v === null);
  const state = applied.weights;
  const dim = hf.hidden_size as number;
  const heads = hf.num_attention_heads as number;
  const kvHeads = (hf.num_key_value_heads ?? heads) as number;
  const hd = (hf.head_dim ?? dim / heads) as number;
  const eps = hf.rms_norm_eps as number;
  const theta = (hf.rope_theta ?? 10000) as number;
  const nLayers = hf.num_hidden_layers as number;
  const embed = state.get("model.embed_tokens.weight")!;
  const head = hf.tie_word_embeddings ? embed : state.get("lm_head.weight")!;
  const vocab = head.shape[0];
  const norm = (name: string) => {
    const w = state.get(`${name}.weight`);
    if (!w) throw new Error(`base lacks ${name}.weight`);
    return w;
  };
  const p = applied.prompt ? applied.prompt.shape[0] : 0;
  const tokens = ids[0].length;
  const out = new Float64Array(ids.length * tokens * vocab);
  ids.forEach((seq, batch) => {
    const t = p + seq.length;
    let x = new Float64Array(t * dim);
    if (applied.prompt) x.set(applied.prompt.data);
    seq.forEach((id, i) => x.set(embed.data.subarray(id * dim, (id + 1) * dim), (p + i) * dim));
    for (let l = 0; l < nLayers; l++) {
      const pre = `model.layers.${l}`;
      const h = hfRmsNorm(x, norm(`${pre}.input_layernorm`), eps, dim);
      let q = hfLinear(state, `${pre}.self_attn.q_proj`, h, t);
      let k = hfLinear(state, `${pre}.self_attn.k_proj`, h, t);
      const v = hfLinear(state, `${pre}.self_attn.v_proj`, h, t);
      if (type === "qwen3") {
        q = hfRmsNorm(q, norm(`${pre}.self_attn.q_norm`), eps, hd);
        k = hfRmsNorm(k, norm(`${pre}.self_attn.k_norm`), eps, hd);
      }
      q = hfRope(q, t, heads, hd, theta);
      k = hfRope(k, t, kvHeads, hd, theta);
      const ctx = new Float64Array(t * heads * hd);
      for (let hh = 0; hh < heads; hh++) {
        const kv = Math.floor(hh / (heads / kvHeads));
        for (let i = 0; i < t; i++) {
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += q[(i * heads + hh) * hd + d] * k[(j * kvHeads + kv) * hd + d];
            scores.push(dot / Math.sqrt(hd));
          }
          softmaxRow(scores).forEach((a, j) => {
            for (let d = 0; d < hd; d++) ctx[(i * heads + hh) * hd + d] += a * v[(j * kvHeads + kv) * hd + d];
          });
        }
      }
      const attn = hfLinear(state, `${pre}.self_attn.o_proj`, ctx, t);
      const adapter = applied.adaptionPrompts?.get(l);
      if (adapter) {
        const len = adapter.prompt.shape[0];
        const promptRows = Float64Array.from(adapter.prompt.data);
        const ak = hfLinear(state, `${pre}.self_attn.k_proj`, promptRows, len);
        const av = hfLinear(state, `${pre}.self_attn.v_proj`, promptRows, len);
        const kOut = ak.length / len;
        const factor = Math.floor(dim / kOut);
        const peftKv = Math.floor(heads / factor);
        if (peftKv * hd !== kOut) throw new Error(`PEFT's view of k_proj(prompt) [${len}, ${kOut}] fails`);
        // llama_compute_query_states: q_proj of the attention input, RoPE, no q-norm.
        const pq = hfRope(hfLinear(state, `${pre}.self_attn.q_proj`, h, t), t, heads, hd, theta);
        const actx = new Float64Array(t * heads * hd);
        for (let hh = 0; hh < heads; hh++) {
          const kv = Math.floor(hh / factor);
          for (let i = 0; i < t; i++) {
            const scores: number[] = [];
            for (let j = 0; j < len; j++) {
              let dot = 0;
              for (let d = 0; d < hd; d++) {
                dot += pq[(i * heads + hh) * hd + d] * ak[(j * peftKv + kv) * hd + d];
              }
              scores.push(dot / Math.sqrt(hd));
            }
            softmaxRow(scores).forEach((a, j) => {
              for (let d = 0; d < hd; d++) {
                actx[(i * heads + hh) * hd + d] += adapter.gate * a * av[(j * peftKv + kv) * hd + d];
              }
            });
          }
        }
        const extra = hfLinear(state, `${pre}.self_attn.o_proj`, actx, t);
        for (let i = 0; i < attn.length; i++) attn[i] += extra[i];
      }
      for (let i = 0; i < x.length; i++) x[i] += attn[i];
      const m = hfRmsNorm(x, norm(`${pre}.post_attention_layernorm`), eps, dim);
      const gate = hfLinear(state, `${pre}.mlp.gate_proj`, m, t);
      const up = hfLinear(state, `${pre}.mlp.up_proj`, m, t);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = hfLinear(state, `${pre}.mlp.down_proj`, act, t);
      x = x.map((xi, i) => xi + down[i]);
    }
    const final = hfRmsNorm(x, norm("model.norm"), eps, dim);
    const logits = hfLinear(
      new Map([["lm_head.weight", head]]),
      "lm_head",
      final.subarray(p * dim),
      seq.length,
    );
    out.set(logits, batch * tokens * vocab);
  });
  return out;
}

/** RandLoRA's merged weight (see the module doc), in float64. */
function randloraMerged(
  config: Record<string, unknown>,
  w: NamedArray,
  shapes: number[][],
  a: NamedArray,
  b: NamedArray,
  lambda: NamedArray,
  gamma: NamedArray,
  key: string,
): Float64Array {
  const [out, inF] = w.shape;
  const r = config.r as number;
  const maxOut = Math.max(...shapes.map((s) => s[0]));
  const maxIn = Math.max(...shapes.map((s) => s[1]));
  const [HI, LO] = [Math.max(maxOut, maxIn), Math.min(maxOut, maxIn)];
  const N = Math.ceil(LO / r);
  const [hi, lo] = [Math.max(out, inF), Math.min(out, inF)];
  const n = Math.ceil(lo / r);
  if (a.shape.join() !== [r, 1, LO].join() || b.shape.join() !== [HI, N, r].join()) {
    throw new Error(
      `${key}: randlora_A [${a.shape}] / randlora_B [${b.shape}] are not [${r}, 1, ${LO}] / [${HI}, ${N}, ${r}]`,
    );
  }
  if (lambda.shape.join() !== [r, n].join() || gamma.shape.join() !== [n, lo].join()) {
    throw new Error(
      `${key}: randlora_lambda [${lambda.shape}] / randlora_gamma [${gamma.shape}] do not fit r ${r}, n ${n}`,
    );
  }
  const c = r * n;
  const ua = new Float64Array(c * lo); // row i n + k
  for (let i = 0; i < r; i++) {
    for (let k = 0; k < n; k++) {
      for (let d = 0; d < lo; d++) {
        ua[(i * n + k) * lo + d] = lambda.data[i * n + k] * a.data[i * LO + d] * gamma.data[k * lo + d];
      }
    }
  }
  const ub = new Float64Array(hi * c); // column k r + j
  for (let m = 0; m < hi; m++) {
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < r; j++) ub[m * c + k * r + j] = b.data[(m * N + k) * r + j];
    }
  }
  const mm = matmul(ub, ua, hi, c, lo);
  const s = (config.randlora_alpha as number) / r;
  return Float64Array.from(w.data, (x, idx) => {
    const [row, col] = [Math.floor(idx / inF), idx % inF];
    return x + s * (inF <= out ? mm[row * lo + col] : mm[col * lo + row]);
  });
}

/**
 * The fields of PEFT's config dataclass for types whose class lacks some common ones, with
 * `PeftConfig`'s own (config.py). `PeftConfig.from_peft_type` drops any other key of
 * `adapter_config.json` with a warning ("Unexpected keyword arguments ... are ignored"), so e.g. a
 * `layers_to_transform` in a RoAd config (road/config.py has none) wraps every matching layer.
 */
const CONFIG_FIELDS: Record<string, string[]> = {
  TINYLORA: [
    "r",
    "u",
    "weight_tying",
    "projection_seed",
    "save_projection",
    "init_v_bound",
    "target_modules",
    "tinylora_dropout",
    "fan_in_fan_out",
    "bias",
    "modules_to_save",
    "init_weights",
    "layers_to_transform",
    "layers_pattern",
  ],
  SHIRA: [
    "r",
    "mask_type",
    "random_seed",
    "target_modules",
    "fan_in_fan_out",
    "init_weights",
    "modules_to_save",
  ],
  ROAD: ["variant", "group_size", "init_weights", "target_modules", "modules_to_save"],
  TRAINABLE_TOKENS: ["token_indices", "target_modules", "init_weights"],
  ADAPTION_PROMPT: ["target_modules", "adapter_len", "adapter_layers"],
  P_TUNING: [
    "num_virtual_tokens",
    "token_dim",
    "num_transformer_submodules",
    "num_attention_heads",
    "num_layers",
    "modules_to_save",
    "encoder_reparameterization_type",
    "encoder_hidden_size",
    "encoder_num_layers",
    "encoder_dropout",
  ],
  C3A: [
    "block_size",
    "target_modules",
    "bias",
    "modules_to_save",
    "layers_to_transform",
    "layers_pattern",
    "block_size_pattern",
    "init_weights",
  ],
};
const PEFT_CONFIG_FIELDS = [
  "base_model_name_or_path",
  "revision",
  "peft_type",
  "task_type",
  "inference_mode",
  "auto_mapping",
  "peft_version",
];

/** The config as PEFT's dataclass keeps it (unknown keys dropped, see {@link CONFIG_FIELDS}). */
function asLoaded(config: Record<string, unknown>): Record<string, unknown> {
  const fields = CONFIG_FIELDS[config.peft_type as string];
  if (!fields) return config;
  return Object.fromEntries(
    Object.entries(config).filter(([k]) => fields.includes(k) || PEFT_CONFIG_FIELDS.includes(k)),
  );
}

/**
 * Apply a PEFT export to a base state dict (Hugging Face names, `LlamaForCausalLM` layout). Throws
 * on anything PEFT would load differently from what the reader models (see the module doc).
 */
export function applyPeftExport(base: Map<string, NamedArray>, files: PeftFiles): PeftApplied {
  const { tensors } = files;
  const config = asLoaded(files.config);
  const type = config.peft_type;
  const used = new Set<string>();
  const take = (key: string): NamedArray => {
    const t = tensors.get(key);
    if (!t) throw new Error(`export lacks ${key}, which PEFT's wrapped module needs`);
    used.add(key);
    return t;
  };
  // Module keys PEFT could wrap: the base's linear layers (2-D weights); the embeddings only for
  // trainable tokens (a tied head has no weight of its own in the state dict: it reads the table).
  const tokens = type === "TRAINABLE_TOKENS";
  const modules = [...base.keys()]
    .filter((k) =>
      k.endsWith(".weight") && base.get(k)!.shape.length === 2 && (tokens || !k.includes("embed_tokens"))
    )
    .map((k) => k.slice(0, -".weight".length));
  // The prompt-side types change the forward, not a linear layer (see promptSide).
  const side = promptSide(config, base, take);
  const wrapped = side ? side.wrapped : modules.filter((k) => peftTargets(config, k));
  if (wrapped.length === 0 && !side) throw new Error("target_modules selects no module of the base");
  expect(config, "fan_in_fan_out", (v) => v === undefined || v === false);
  expect(config, "bias", (v) => v === undefined || v === "none");
  expect(config, "exclude_modules", empty);

  const weights = new Map(base);
  const prefix = (k: string) => `base_model.model.${k}`;
  for (const key of side ? [] : wrapped) {
    const w = base.get(`${key}.weight`)!;
    const [out, inF] = w.shape;
    let merged: Float64Array;
    if (type === "LORA") {
      expect(config, "rank_pattern", empty);
      expect(config, "alpha_pattern", empty);
      expect(config, "lora_bias", (v) => v === undefined || v === false);
      expect(config, "init_lora_weights", (v) => v === true || v === undefined);
      const a = take(`${prefix(key)}.lora_A.weight`);
      const b = take(`${prefix(key)}.lora_B.weight`);
      const r = config.r as number;
      if (a.shape[0] !== r || a.shape[1] !== inF || b.shape[0] !== out || b.shape[1] !== r) {
        throw new Error(
          `${key}: lora_A [${a.shape}] / lora_B [${b.shape}] do not fit r ${r} and [${out}, ${inF}]`,
        );
      }
      const alpha = config.lora_alpha as number;
      const s = config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
      const ba = matmul(b.data, a.data, out, r, inF);
      merged = Float64Array.from(w.data, (x, i) => x + s * ba[i]);
      if (config.use_dora) {
        const m = take(`${prefix(key)}.lora_magnitude_vector`);
        if (m.data.length !== out) {
          throw new Error(`${key}: lora_magnitude_vector has ${m.data.length} values`);
        }
        for (let i = 0; i < out; i++) {
          let n2 = 0;
          for (let j = 0; j < inF; j++) n2 += merged[i * inF + j] ** 2;
          const f = m.data[i] / Math.sqrt(n2);
          for (let j = 0; j < inF; j++) merged[i * inF + j] *= f;
        }
      }
    } else if (type === "ADALORA") {
      const a = take(`${prefix(key)}.lora_A`);
      const b = take(`${prefix(key)}.lora_B`);
      const e = take(`${prefix(key)}.lora_E`);
      const r = e.shape[0];
      // rank_pattern keys: PEFT's own carry the adapter name (`...q_proj.lora_E.default`).
      const patterns = (config.rank_pattern ?? {}) as Record<string, boolean[]>;
      const pattern = patterns[`${key}.lora_E`] ?? patterns[`${key}.lora_E.default`];
      const wantR = pattern ? pattern.filter(Boolean).length : config.init_r as number;
      if (r !== wantR || e.shape[1] !== 1 || a.shape[0] !== r || a.shape[1] !== inF || b.shape[0] !== out) {
        throw new Error(
          `${key}: AdaLoRA tensors [${a.shape}] [${e.shape}] [${b.shape}] do not fit rank ${wantR}`,
        );
      }
      const alpha = config.lora_alpha as number;
      const scaling = (alpha > 0 ? alpha : r) / ((config.init_r as number) + 1e-5);
      const ae = Float64Array.from(a.data, (x, i) => x * e.data[Math.floor(i / inF)]);
      const bae = matmul(b.data, ae, out, r, inF);
      merged = Float64Array.from(w.data, (x, i) => x + scaling * bae[i]);
    } else if (type === "VERA") {
      expect(config, "save_projection", (v) => v === true);
      const va = take("base_model.vera_A");
      const vb = take("base_model.vera_B");
      const r = config.r as number;
      const lb = take(`${prefix(key)}.vera_lambda_b`);
      const ld = take(`${prefix(key)}.vera_lambda_d`);
      if (va.shape[0] !== r || vb.shape[1] !== r || va.shape[1] < inF || vb.shape[0] < out) {
        throw new Error(
          `${key}: vera_A [${va.shape}] / vera_B [${vb.shape}] cannot be sliced to [${out}, ${inF}]`,
        );
      }
      if (lb.data.length !== out || ld.data.length !== r) throw new Error(`${key}: lambda sizes`);
      const bs = new Float64Array(out * r);
      for (let i = 0; i < out; i++) {
        for (let k = 0; k < r; k++) bs[i * r + k] = lb.data[i] * vb.data[i * r + k];
      }
      const as = new Float64Array(r * inF);
      for (let k = 0; k < r; k++) {
        for (let j = 0; j < inF; j++) as[k * inF + j] = ld.data[k] * va.data[k * va.shape[1] + j];
      }
      const d = matmul(bs, as, out, r, inF);
      merged = Float64Array.from(w.data, (x, i) => x + d[i]);
    } else if (type === "OFT") {
      merged = oftMerged(config, w, take(`${prefix(key)}.oft_R.weight`), key);
    } else if (type === "HRA") {
      merged = hraMerged(config, w, take(`${prefix(key)}.hra_u`), key);
    } else if (type === "BOFT") {
      merged = boftMerged(config, w, take(`${prefix(key)}.boft_R`), take(`${prefix(key)}.boft_s`), key);
    } else if (type === "ROAD") {
      const g = config.group_size as number;
      const theta = take(`${prefix(key)}.road_theta`);
      const alpha = take(`${prefix(key)}.road_alpha`);
      const want = { road_1: out / 2, road_2: out, road_4: 2 * out }[config.variant as string];
      if (out % g !== 0 || g % 2 !== 0 || theta.data.length !== want || alpha.data.length !== want) {
        throw new Error(
          `${key}: road_theta/road_alpha [${theta.shape}] do not fit ${config.variant}, group ${g}, out ${out}`,
        );
      }
      const { c1, c2 } = roadColumns(config.variant as string, g, theta.data, alpha.data, out);
      merged = roadApplyRows(w.data, inF, c1, c2, g);
      const bias = base.get(`${key}.bias`);
      if (bias) {
        weights.set(`${key}.bias`, {
          data: Float32Array.from(roadApplyRows(bias.data, 1, c1, c2, g)),
          shape: bias.shape,
        });
      }
    } else if (type === "DELORA") {
      expect(config, "rank_pattern", empty);
      expect(config, "lambda_pattern", empty);
      expect(config, "module_dropout", (v) => v === undefined || v === 0);
      const t = (n: string) => take(`${prefix(key)}.${n}`);
      merged = deloraMerged(
        config.r as number,
        w,
        t("delora_A"),
        t("delora_B"),
        t("delora_lambda"),
        t("delora_w_norm"),
        key,
      );
    } else if (type === "MISS") {
      merged = missMerged(config, w, take(`${prefix(key)}.miss_block`), key);
    } else if (type === "TRAINABLE_TOKENS") {
      merged = trainableTokensMerged(config, w, take(`${prefix(key)}.trainable_tokens_delta`), key);
    } else if (type === "C3A") {
      merged = c3aMerged(config, w, take(`${prefix(key)}.c3a_kernel`), key);
    } else if (type === "VBLORA") {
      expect(config, "save_only_topk_weights", (v) => v === undefined || v === false);
      merged = vbloraMerged(
        config,
        w,
        take(`${prefix(key)}.vblora_logits_A`),
        take(`${prefix(key)}.vblora_logits_B`),
        take("base_model.vblora_vector_bank"),
        key,
      );
    } else if (type === "RANDLORA") {
      expect(config, "save_projection", (v) => v === true);
      expect(config, "sparse", (v) => v === undefined || v === false);
      expect(config, "very_sparse", (v) => v === undefined || v === false);
      expect(config, "init_weights", (v) => v === undefined || v === true);
      merged = randloraMerged(
        config,
        w,
        wrapped.map((k) => base.get(`${k}.weight`)!.shape),
        take("base_model.randlora_A"),
        take("base_model.randlora_B"),
        take(`${prefix(key)}.randlora_lambda`),
        take(`${prefix(key)}.randlora_gamma`),
        key,
      );
    } else if (type === "TINYLORA") {
      expect(config, "save_projection", (v) => v === true);
      expect(config, "tinylora_dropout", (v) => v === undefined || v === 0);
      const a = take(`${prefix(key)}.tinylora_A`);
      const b = take(`${prefix(key)}.tinylora_B`);
      const p = take(`${prefix(key)}.tinylora_P`);
      const v = take(`base_model.tinylora_v.${tinyloraGroup(config, wrapped, key)}`);
      const [r, u] = [Math.min(config.r as number, out, inF), config.u as number];
      const fits = a.shape.join() === [r, inF].join() && b.shape.join() === [out, r].join() &&
        p.shape.join() === [u, r, r].join() && v.shape.join() === [u].join();
      if (!fits) {
        throw new Error(
          `${key}: tinylora_A [${a.shape}] / B [${b.shape}] / P [${p.shape}] / v [${v.shape}] do not fit r ${r}, u ${u}`,
        );
      }
      const R = new Float64Array(r * r);
      for (let i = 0; i < u; i++) for (let e = 0; e < r * r; e++) R[e] += v.data[i] * p.data[i * r * r + e];
      const d = matmul(matmul(b.data, R, out, r, r), a.data, out, r, inF);
      merged = Float64Array.from(w.data, (x, i) => x + d[i]);
    } else if (type === "SHIRA") {
      expect(config, "init_weights", (v) => v === undefined || v === true);
      const sw = take(`${prefix(key)}.shira_weight`);
      const si = take(`${prefix(key)}.shira_indices`);
      const k = (config.r as number) * (out + inF);
      if (sw.data.length !== k || si.shape.join() !== [2, k].join()) {
        throw new Error(
          `${key}: shira_weight [${sw.shape}] / shira_indices [${si.shape}] do not fit r (in + out) = ${k}`,
        );
      }
      merged = Float64Array.from(w.data);
      for (let t = 0; t < k; t++) {
        const [row, col] = [Math.trunc(si.data[t]), Math.trunc(si.data[k + t])];
        if (row < 0 || row >= out || col < 0 || col >= inF) {
          throw new Error(`${key}: shira index (${row}, ${col}) outside W`);
        }
        merged[row * inF + col] += sw.data[t];
      }
    } else {
      throw new Error(`reader does not model peft_type ${JSON.stringify(type)}`);
    }
    weights.set(`${key}.weight`, { data: Float32Array.from(merged), shape: [out, inF] });
  }

  // modules_to_save: PEFT saves the trained copy under the module's own name (save_and_load.py
  // strips `modules_to_save.` and the adapter name); a sequence-classification model's head is `score`.
  let score: NamedArray | undefined;
  const saved = (config.modules_to_save as string[] | null | undefined) ?? [];
  if (config.task_type === "SEQ_CLS" && !saved.includes("score")) {
    throw new Error("task_type SEQ_CLS without score in modules_to_save: PEFT would keep a random head");
  }
  for (const m of saved) {
    if (m !== "score") throw new Error(`reader does not model modules_to_save entry ${m}`);
    score = take(prefix("score.weight"));
  }
  const stray = [...tensors.keys()].filter((k) => !used.has(k));
  if (stray.length > 0) {
    throw new Error(`tensors no wrapped module uses (PEFT drops them): ${stray.join(", ")}`);
  }
  return { weights, wrapped, score, prompt: side?.prompt, adaptionPrompts: side?.adaptionPrompts };
}
