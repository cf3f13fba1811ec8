/**
 * A Llama-family decoder written with tfjs ops as explicit modules: token embedding, RMSNorm,
 * RoPE (llama2.c interleaved pairs or Hugging Face rotate-half), grouped-query attention, SwiGLU
 * MLP, optional q/k RMSNorm (Qwen3) and q/k/v bias (Qwen2), tied or separate output head, causal
 * and padding masks.
 *
 * Parameter names (used by checkpoints, PEFT target patterns and adapters):
 * `embed.weight`, `layers.{i}.attn_norm.weight`, `layers.{i}.attn.{q,k,v,o}.weight`
 * (`.bias` for q/k/v when `qkvBias`), `layers.{i}.attn.{q_norm,k_norm}.weight` (when `qkNorm`),
 * `layers.{i}.mlp_norm.weight`, `layers.{i}.mlp.{gate,up,down}.weight`, `norm.weight`,
 * `lm_head.weight` (when not tied). Linear layers are `LinearModule`s in `model.linears`, keyed by
 * the name without `.weight` (see `linear.ts`).
 *
 * Frozen linear weights and the embedding table may instead be {@link StoredTensor}s outside the
 * tfjs heap, in the checkpoint's precision (`storedWeights`, see `offheap_linear.ts`): then they
 * are not in `params`, their layers are `OffHeapLinear`s, embeddings are gathered from the stored
 * table and a tied head multiplies with it.
 *
 * Performance notes (measured, see README): RoPE is x*cos + (x R)*sin with a fixed signed
 * permutation R applied as one small matmul (split/stack dominated an earlier profile);
 * grouped-query attention reshapes the queries into their KV groups instead of tiling K and V.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "./variables.ts";
import { type LlamaConfig, type RopeScaling, validateConfig } from "./config.ts";
import { Linear, type LinearModule } from "./linear.ts";
import { checkpointed, type CheckpointVars } from "./checkpoint.ts";
import { OffHeapLinear, storedGather, storedLinear } from "./offheap_linear.ts";
import { StoredTensor } from "./stored.ts";
import { type EmbeddingOverride, overrideEmbeddings, overrideTiedLogits } from "./embedding_override.ts";
import {
  causalSoftmax,
  linear,
  matMulLean,
  matMulTransB,
  rmsNorm,
  rope,
  softmaxCrossEntropy,
  swiglu,
} from "./ops.ts";
import type { Rng } from "./util/rng.ts";

/** Hooks through which prompt-, prefix- and adapter-style methods change the forward pass. */
export interface ModelHooks {
  /**
   * Embedding-table rows replaced by others (trainable tokens): substituted after the gather, so
   * the table may live off the heap, and used as a tied head's rows (`embedding_override.ts`).
   */
  embeddingOverride?: () => EmbeddingOverride;
  /** Soft prompt [P, dim] prepended to every sequence's embeddings (prompt tuning). */
  promptEmbeddings?: () => tf.Tensor2D;
  /** Key and value prefixes [P, nKvHeads*headDim] for a layer, attended by every token (prefix tuning). */
  kvPrefix?: (layer: number) => { k: tf.Tensor2D; v: tf.Tensor2D } | null;
  /**
   * Extra attention context [B*T, nHeads*headDim] added to a layer's head outputs before the output
   * projection, from its queries [B, T, nHeads, headDim] after q-norm and RoPE (LLaMA-Adapter).
   */
  attentionContext?: (layer: number, q: tf.Tensor4D) => tf.Tensor2D | null;
  /** Transform a sublayer's output [N, dim] before the residual add (bottleneck adapters). */
  sublayerOutput?: (layer: number, kind: "attn" | "mlp", out: tf.Tensor2D) => tf.Tensor2D;
  /**
   * Observe each layer's attention probabilities [B, nHeads, T, P + T] (diagnostics). The tensor
   * is freed after the call: read it synchronously (`dataSync`) or `tf.keep` a copy.
   */
  attentionProbs?: (layer: number, probs: tf.Tensor4D) => void;
}

/** Options of a forward pass. */
export interface ForwardOptions {
  /** [B, T] with 1 for real tokens and 0 for padding (right padding). */
  attentionMask?: tf.Tensor2D;
}

/** Result of {@link LlamaModel.lmLoss}. */
export interface LmLoss {
  /** Mean next-token cross-entropy in nats over counted targets (scalar). */
  loss: tf.Scalar;
  /** Sum of cross-entropies (scalar). */
  sum: tf.Scalar;
  /** Per-target cross-entropies [B, T-1], zero where masked. */
  perToken: tf.Tensor2D;
}

const NEG_INF = -1e9;

/** Names of the linear layers of one decoder layer, in order. */
export const LAYER_LINEARS = [
  "attn.q",
  "attn.k",
  "attn.v",
  "attn.o",
  "mlp.gate",
  "mlp.up",
  "mlp.down",
] as const;

/** The decoder. Build with {@link LlamaModel.fromWeights} or {@link LlamaModel.random}. */
export class LlamaModel {
  readonly config: LlamaConfig;
  /** Every base parameter by name (see the module doc); frozen unless a method says otherwise. */
  readonly params: Map<string, tf.Variable>;
  /** Linear layers by name; PEFT methods replace entries with wrappers. */
  readonly linears: Map<string, LinearModule>;
  /** Frozen weights held outside the tfjs heap by parameter name (linear weights, `embed.weight`). */
  get storedWeights(): ReadonlyMap<string, StoredTensor> {
    return this.#stored;
  }
  #stored: Map<string, StoredTensor>;
  /** Method hooks; empty for the plain model. */
  hooks: ModelHooks = {};
  /**
   * Activation checkpointing per decoder layer (`--grad-checkpoint`): under a gradient tape each
   * layer keeps only its input, and the backward pass recomputes the layer (`checkpoint.ts`), so
   * the activations held for the backward pass scale with one layer. Same values and gradients.
   */
  gradCheckpoint = false;
  #checkpointVars = new Map<number, CheckpointVars>();
  #ropeCache = new Map<string, { cos: tf.Tensor; sin: tf.Tensor }>();
  #maskCache = new Map<string, tf.Tensor>();

  private constructor(
    config: LlamaConfig,
    params: Map<string, tf.Variable>,
    stored: Map<string, StoredTensor> = new Map(),
  ) {
    this.config = config;
    this.params = params;
    this.#stored = stored;
    this.linears = new Map();
    const layer = (name: string, bias: tf.Variable | null): LinearModule => {
      const w = stored.get(`${name}.weight`);
      return w
        ? new OffHeapLinear(name, w, bias)
        : new Linear(name, params.get(`${name}.weight`) as tf.Variable<tf.Rank.R2>, bias);
    };
    for (let i = 0; i < config.nLayers; i++) {
      for (const l of LAYER_LINEARS) {
        const name = `layers.${i}.${l}`;
        this.linears.set(name, layer(name, params.get(`${name}.bias`) ?? null));
      }
    }
    if (!config.tiedEmbeddings) this.linears.set("lm_head", layer("lm_head", null));
  }

  /** Shapes of every parameter this config needs, by name. */
  static parameterShapes(config: LlamaConfig): Map<string, number[]> {
    const c = config;
    const shapes = new Map<string, number[]>();
    shapes.set("embed.weight", [c.vocabSize, c.dim]);
    for (let i = 0; i < c.nLayers; i++) {
      const p = `layers.${i}`;
      shapes.set(`${p}.attn_norm.weight`, [c.dim]);
      shapes.set(`${p}.attn.q.weight`, [c.nHeads * c.headDim, c.dim]);
      shapes.set(`${p}.attn.k.weight`, [c.nKvHeads * c.headDim, c.dim]);
      shapes.set(`${p}.attn.v.weight`, [c.nKvHeads * c.headDim, c.dim]);
      shapes.set(`${p}.attn.o.weight`, [c.dim, c.nHeads * c.headDim]);
      if (c.qkvBias) {
        shapes.set(`${p}.attn.q.bias`, [c.nHeads * c.headDim]);
        shapes.set(`${p}.attn.k.bias`, [c.nKvHeads * c.headDim]);
        shapes.set(`${p}.attn.v.bias`, [c.nKvHeads * c.headDim]);
      }
      if (c.qkNorm) {
        shapes.set(`${p}.attn.q_norm.weight`, [c.headDim]);
        shapes.set(`${p}.attn.k_norm.weight`, [c.headDim]);
      }
      shapes.set(`${p}.mlp_norm.weight`, [c.dim]);
      shapes.set(`${p}.mlp.gate.weight`, [c.hiddenDim, c.dim]);
      shapes.set(`${p}.mlp.up.weight`, [c.hiddenDim, c.dim]);
      shapes.set(`${p}.mlp.down.weight`, [c.dim, c.hiddenDim]);
    }
    shapes.set("norm.weight", [c.dim]);
    if (!c.tiedEmbeddings) shapes.set("lm_head.weight", [c.vocabSize, c.dim]);
    return shapes;
  }

  /**
   * Build a model from named float32 arrays, or {@link StoredTensor}s for weights kept outside the
   * heap (linear weights and `embed.weight`; see {@link isStorableWeight}). Every parameter of the
   * config must be present with the right size; extra names are an error too, so a mislabelled
   * checkpoint cannot load silently.
   */
  static fromWeights(
    config: LlamaConfig,
    weights: Map<string, Float32Array | StoredTensor>,
    source = "checkpoint",
  ): LlamaModel {
    const cfg = validateConfig(config);
    const shapes = LlamaModel.parameterShapes(cfg);
    const params = new Map<string, tf.Variable>();
    const stored = new Map<string, StoredTensor>();
    for (const [name, shape] of shapes) {
      const entry = weights.get(name);
      if (entry instanceof StoredTensor) {
        if (!isStorableWeight(name) || entry.rows !== shape[0] || entry.cols !== shape[1]) {
          throw new Error(
            `${source}: tensor '${name}' [${entry.shape}] cannot stay off the heap (needs a linear weight or embed.weight of shape [${shape}])`,
          );
        }
        stored.set(name, entry);
        continue;
      }
      const data = entry;
      if (!data) {
        throw new Error(`${source}: missing tensor '${name}' required by the config (shape [${shape}])`);
      }
      const size = shape.reduce((a, b) => a * b, 1);
      if (data.length !== size) {
        throw new Error(
          `${source}: tensor '${name}' has ${data.length} values but the config needs shape [${shape}] (${size})`,
        );
      }
      // Unnamed: tfjs registers variable names globally, and several models may be alive at once.
      params.set(name, variableOf(() => tf.tensor(data, shape, "float32"), false));
    }
    for (const name of weights.keys()) {
      if (!shapes.has(name)) {
        throw new Error(`${source}: unexpected tensor '${name}' not used by this config`);
      }
    }
    return new LlamaModel(cfg, params, stored);
  }

  /**
   * A randomly initialised model (normal(0, 0.02) weights, unit norm gains, zero biases, output
   * projections scaled by 1/sqrt(2 nLayers) as in GPT-2), all draws from `rng`.
   */
  static random(config: LlamaConfig, rng: Rng, std = 0.02): LlamaModel {
    const cfg = validateConfig(config);
    const weights = new Map<string, Float32Array>();
    for (const [name, shape] of LlamaModel.parameterShapes(cfg)) {
      weights.set(name, initValues(name, shape.reduce((a, b) => a * b, 1), cfg.nLayers, rng, std));
    }
    return LlamaModel.fromWeights(cfg, weights, "random init");
  }

  /** A linear layer by name, with a clear error for a wrong name. */
  linear(name: string): LinearModule {
    const l = this.linears.get(name);
    if (!l) throw new Error(`unknown linear layer '${name}'`);
    return l;
  }

  /** A parameter by name, with a clear error for a wrong name. */
  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`unknown parameter '${name}'`);
    return p;
  }

  /** The embedding rows of `ids`, row-major [ids.length, dim], wherever the table is stored. */
  embeddingRows(ids: readonly number[]): Float32Array {
    const dim = this.config.dim;
    const out = new Float32Array(ids.length * dim);
    const table = this.storedWeights.get("embed.weight");
    const heap = table ? null : this.param("embed.weight").dataSync() as Float32Array;
    ids.forEach((id, j) =>
      out.set(table ? table.decodeRows(id, 1) : heap!.subarray(id * dim, (id + 1) * dim), j * dim)
    );
    return out;
  }

  /** Token embeddings [N, dim] of flat ids. */
  #embed(ids: tf.Tensor1D): tf.Tensor2D {
    const table = this.storedWeights.get("embed.weight");
    if (table) return storedGather(table, ids);
    // gather's gradient (UnsortedSegmentSum) is registered for wasm in wasm_kernels.ts.
    return tf.gather(this.param("embed.weight") as tf.Tensor2D, ids);
  }

  /**
   * Final hidden states [B, T, dim] (after the last RMSNorm) of token ids [B, T].
   * With a soft prompt hook the prompt positions are stripped again, so T is unchanged.
   */
  hidden(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, seqLen] = ids.shape;
      const c = this.config;
      const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
      let x = this.#embed(flat);
      if (this.hooks.embeddingOverride) x = overrideEmbeddings(x, flat, this.hooks.embeddingOverride());
      let mask = options.attentionMask;
      let promptLen = 0;
      if (this.hooks.promptEmbeddings) {
        const prompt = this.hooks.promptEmbeddings();
        promptLen = prompt.shape[0];
        const x3 = tf.reshape(x, [batch, seqLen, c.dim]);
        const p3 = tf.broadcastTo(tf.reshape(prompt, [1, promptLen, c.dim]), [batch, promptLen, c.dim]);
        x = tf.reshape(tf.concat([p3, x3], 1), [-1, c.dim]);
        if (mask) mask = tf.concat([tf.ones([batch, promptLen]), mask], 1) as tf.Tensor2D;
      }
      const t = seqLen + promptLen;
      const keyMask = mask
        ? tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, "float32")), NEG_INF), [batch, 1, 1, t])
        : null;
      for (let layer = 0; layer < c.nLayers; layer++) {
        // One scope per layer: without a gradient tape (evaluation) a layer's intermediates are
        // freed before the next layer runs, instead of all layers' at the end of the pass (with a
        // tape, what the backward pass needs is kept by the tape). At 28 layers and an evaluation
        // batch of 32 x 64 tokens the whole-pass scope held more than the 4 GiB wasm heap.
        const input = x;
        const block = (xin: tf.Tensor2D, aux: tf.Tensor[], observe: boolean) => {
          const p = `layers.${layer}`;
          let h = this.#attention(
            layer,
            rmsNorm(xin, this.param(`${p}.attn_norm.weight`), c.normEps),
            batch,
            t,
            aux[0] ?? null,
            observe,
          );
          if (this.hooks.sublayerOutput) h = this.hooks.sublayerOutput(layer, "attn", h);
          const mid = tf.add(xin, h) as tf.Tensor2D;
          let m = this.#mlp(layer, rmsNorm(mid, this.param(`${p}.mlp_norm.weight`), c.normEps));
          if (this.hooks.sublayerOutput) m = this.hooks.sublayerOutput(layer, "mlp", m);
          return tf.add(mid, m) as tf.Tensor2D;
        };
        const aux = keyMask ? [keyMask] : [];
        x = tf.tidy(() => {
          if (!this.gradCheckpoint) return block(input, aux, true);
          const r = checkpointed(block, input, aux, this.#checkpointVars.get(layer));
          if (r.cache) this.#checkpointVars.set(layer, r.cache);
          return r.y;
        });
      }
      let out = tf.reshape(rmsNorm(x, this.param("norm.weight"), c.normEps), [
        batch,
        t,
        c.dim,
      ]) as tf.Tensor3D;
      if (promptLen > 0) out = tf.slice(out, [0, promptLen, 0], [batch, seqLen, c.dim]);
      return out;
    });
  }

  #attention(
    layer: number,
    x: tf.Tensor2D,
    batch: number,
    t: number,
    keyMask: tf.Tensor | null,
    observe = true,
  ): tf.Tensor2D {
    const c = this.config;
    const p = `layers.${layer}.attn`;
    const hd = c.headDim;
    const groups = c.nHeads / c.nKvHeads;
    let q = tf.reshape(this.linear(`${p}.q`).forward(x), [batch, t, c.nHeads, hd]);
    let k = tf.reshape(this.linear(`${p}.k`).forward(x), [batch, t, c.nKvHeads, hd]);
    const v0 = tf.reshape(this.linear(`${p}.v`).forward(x), [batch, t, c.nKvHeads, hd]);
    if (c.qkNorm) {
      q = rmsNorm(q, this.param(`${p}.q_norm.weight`), c.normEps);
      k = rmsNorm(k, this.param(`${p}.k_norm.weight`), c.normEps);
    }
    const { cos, sin } = this.#rope(t);
    q = rope(q, cos, sin, c.ropeStyle);
    k = rope(k, cos, sin, c.ropeStyle);
    // [B, H, T, hd] with the heads of one KV group contiguous, so a reshape groups them.
    const qh = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [
      batch,
      c.nKvHeads,
      groups * t,
      hd,
    ]);
    let kh = tf.transpose(k, [0, 2, 1, 3]);
    let vh = tf.transpose(v0, [0, 2, 1, 3]);
    let prefixLen = 0;
    const prefix = this.hooks.kvPrefix?.(layer);
    if (prefix) {
      prefixLen = prefix.k.shape[0];
      const shape = [batch, c.nKvHeads, prefixLen, hd];
      const pk = tf.broadcastTo(
        tf.transpose(tf.reshape(prefix.k, [1, prefixLen, c.nKvHeads, hd]), [0, 2, 1, 3]),
        shape,
      );
      const pv = tf.broadcastTo(
        tf.transpose(tf.reshape(prefix.v, [1, prefixLen, c.nKvHeads, hd]), [0, 2, 1, 3]),
        shape,
      );
      kh = tf.concat([pk, kh], 2);
      vh = tf.concat([pv, vh], 2);
    }
    const tk = t + prefixLen;
    const scores = tf.reshape(matMulTransB(qh, kh), [batch, c.nHeads, t, tk]) as tf.Tensor4D;
    const km = keyMask && prefixLen > 0
      ? tf.concat([tf.zeros([batch, 1, 1, prefixLen]), keyMask], 3)
      : keyMask;
    const soft = causalSoftmax(scores, 1 / Math.sqrt(hd), this.#causalMask(t, prefixLen), prefixLen, km);
    // Not again when a checkpointed layer is probed or recomputed.
    if (observe) this.hooks.attentionProbs?.(layer, soft);
    const probs = tf.reshape(soft, [batch, c.nKvHeads, groups * t, tk]);
    const ctx = tf.reshape(matMulLean(probs, vh), [batch, c.nHeads, t, hd]);
    const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [batch * t, c.nHeads * hd]) as tf.Tensor2D;
    const extra = this.hooks.attentionContext?.(layer, q as tf.Tensor4D);
    return this.linear(`${p}.o`).forward(extra ? tf.add(merged, extra) as tf.Tensor2D : merged);
  }

  #mlp(layer: number, x: tf.Tensor2D): tf.Tensor2D {
    const p = `layers.${layer}.mlp`;
    const gate = this.linear(`${p}.gate`).forward(x);
    const up = this.linear(`${p}.up`).forward(x);
    return this.linear(`${p}.down`).forward(swiglu(gate, up));
  }

  /** cos/sin tables [T, 1, hd] for positions 0..T-1, cached across calls. */
  #rope(t: number): { cos: tf.Tensor; sin: tf.Tensor } {
    const key = String(t);
    let entry = this.#ropeCache.get(key);
    if (!entry) {
      const { headDim, ropeTheta, ropeStyle, ropeScaling } = this.config;
      const { cos, sin } = ropeTables(t, headDim, ropeTheta, ropeStyle, ropeScaling);
      entry = {
        cos: tf.keep(tf.tensor(cos, [t, 1, this.config.headDim])),
        sin: tf.keep(tf.tensor(sin, [t, 1, this.config.headDim])),
      };
      this.#ropeCache.set(key, entry);
    }
    return entry;
  }

  /** Additive causal mask [T, P + T]: prefix columns always visible, future tokens hidden. */
  #causalMask(t: number, prefixLen: number): tf.Tensor {
    const key = `${t}:${prefixLen}`;
    let mask = this.#maskCache.get(key);
    if (!mask) {
      const data = new Float32Array(t * (prefixLen + t));
      for (let i = 0; i < t; i++) {
        for (let j = i + 1; j < t; j++) data[i * (prefixLen + t) + prefixLen + j] = NEG_INF;
      }
      mask = tf.keep(tf.tensor(data, [t, prefixLen + t]));
      this.#maskCache.set(key, mask);
    }
    return mask;
  }

  /** Output logits [N, vocab] of hidden rows [N, dim]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    if (this.config.tiedEmbeddings) {
      const table = this.storedWeights.get("embed.weight");
      // A stored table: logits = h E^T by the same kernel as a frozen linear, dh = dlogits E.
      const head = () =>
        table ? storedLinear(hidden, table) : linear(hidden, this.param("embed.weight") as tf.Tensor2D);
      const o = this.hooks.embeddingOverride;
      return o ? tf.tidy(() => overrideTiedLogits(head(), hidden, o())) : head();
    }
    return this.linear("lm_head").forward(hidden);
  }

  /**
   * Causal LM cross-entropy: position t predicts token t+1. `attentionMask` [B, T] marks real
   * tokens; a target counts when it is real (its predicting position then is real too).
   */
  lmLoss(ids: tf.Tensor2D, options: ForwardOptions = {}): LmLoss {
    return tf.tidy(() => {
      const [batch, t] = ids.shape;
      const d = this.config.dim;
      const h = this.hidden(ids, options);
      const inputs = tf.reshape(tf.slice(h, [0, 0, 0], [batch, t - 1, d]), [-1, d]) as tf.Tensor2D;
      const targets = tf.reshape(tf.slice(ids, [0, 1], [batch, t - 1]), [-1]) as tf.Tensor1D;
      let nll: tf.Tensor = softmaxCrossEntropy(this.logits(inputs), targets);
      let count: tf.Tensor = tf.scalar(batch * (t - 1));
      if (options.attentionMask) {
        const w = tf.reshape(tf.slice(tf.cast(options.attentionMask, "float32"), [0, 1], [batch, t - 1]), [
          -1,
        ]);
        nll = tf.mul(nll, w);
        count = tf.maximum(tf.sum(w), 1);
      }
      const sum = tf.sum(nll) as tf.Scalar;
      return {
        loss: tf.div(sum, count) as tf.Scalar,
        sum,
        perToken: tf.reshape(nll, [batch, t - 1]) as tf.Tensor2D,
      };
    });
  }

  /**
   * Drop the stored weight `name` once no layer multiplies with it (its layer was replaced by a
   * quantized one), so its memory can be reclaimed: a stored table is otherwise held for the
   * model's lifetime (a 0.6B model's bf16 linears, 0.9 GB, beside their 4-bit codes).
   */
  releaseStored(name: string): void {
    this.#stored.delete(name);
  }

  /** Bytes of the weights held outside the tfjs heap ({@link storedWeights}). */
  storedBytes(): number {
    let bytes = 0;
    for (const w of this.storedWeights.values()) bytes += w.storedBytes;
    return bytes;
  }

  /** Every variable of the model (base parameters), for memory accounting. */
  variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** Free all tensors owned by the model. */
  dispose(): void {
    for (const layer of this.linears.values()) {
      for (let l: LinearModule | undefined = layer; l; l = l.base) l.dispose?.();
    }
    for (const v of this.params.values()) v.dispose();
    for (const e of this.#ropeCache.values()) tf.dispose([e.cos, e.sin]);
    for (const m of this.#maskCache.values()) m.dispose();
  }
}

/**
 * Values of the parameter `name` (size values) as {@link LlamaModel.random} draws them: unit norm
 * gains, zero biases, normal(0, std) elsewhere with output projections (`attn.o`, `mlp.down`)
 * scaled by 1/sqrt(2 nLayers); drawn from `rng` forked by the name, so a tensor's values do not
 * depend on which others are drawn.
 */
export function initValues(name: string, size: number, nLayers: number, rng: Rng, std = 0.02): Float32Array {
  if (name.endsWith("norm.weight")) return new Float32Array(size).fill(1);
  if (name.endsWith(".bias")) return new Float32Array(size);
  const scale = /attn\.o\.|mlp\.down\./.test(name) ? std / Math.sqrt(2 * nLayers) : std;
  return rng.fork(name).normalArray(size, scale);
}

/**
 * Whether a parameter may be a {@link StoredTensor} outside the heap: frozen 2-D weights the model
 * only multiplies with or gathers from (linear weights, the embedding table), not norm gains or
 * biases, which stay small trainable-capable variables.
 */
export function isStorableWeight(name: string): boolean {
  return name === "embed.weight" || name === "lm_head.weight" ||
    /^layers\.\d+\.(attn\.[qkvo]|mlp\.(gate|up|down))\.weight$/.test(name);
}

/**
 * RoPE's inverse frequencies theta^(-2i/hd), i < hd/2, under a frequency scaling (transformers'
 * `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters` and
 * `_compute_llama3_parameters`). llama3: with wavelength w = 2 pi / f, L = originalMax /
 * lowFreqFactor and H = originalMax / highFreqFactor, f / factor when w > L, f when w < H, else
 * (1 - s) f / factor + s f with s = (originalMax / w - lowFreqFactor) / (highFreqFactor - lowFreqFactor).
 */
export function ropeInvFreq(
  headDim: number,
  theta: number,
  scaling: RopeScaling | null = null,
): Float64Array {
  const out = new Float64Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const f = Math.pow(theta, (-2 * i) / headDim);
    if (scaling === null) out[i] = f;
    else if (scaling.type === "linear") out[i] = f / scaling.factor;
    else {
      const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: ctx } = scaling;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > ctx / lo) out[i] = f / factor;
      else if (wavelen < ctx / hi) out[i] = f;
      else {
        const smooth = (ctx / wavelen - lo) / (hi - lo);
        out[i] = ((1 - smooth) * f) / factor + smooth * f;
      }
    }
  }
  return out;
}

/** cos and sin tables [T * hd] for angle t * theta^(-2i/hd) on pair i, laid out by the pairing style. */
export function ropeTables(
  t: number,
  headDim: number,
  theta: number,
  style: LlamaConfig["ropeStyle"],
  scaling: RopeScaling | null = null,
): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(t * headDim);
  const sin = new Float32Array(t * headDim);
  const half = headDim / 2;
  const invFreq = ropeInvFreq(headDim, theta, scaling);
  for (let pos = 0; pos < t; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * invFreq[i];
      const [a, b] = style === "interleaved" ? [2 * i, 2 * i + 1] : [i, i + half];
      cos[pos * headDim + a] = cos[pos * headDim + b] = Math.cos(angle);
      sin[pos * headDim + a] = sin[pos * headDim + b] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
