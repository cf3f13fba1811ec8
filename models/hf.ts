/**
 * Hugging Face model folders: `config.json` + `model.safetensors` (or sharded
 * `model.safetensors.index.json`) for `LlamaForCausalLM`, `Qwen2ForCausalLM` and
 * `Qwen3ForCausalLM`, read into and written from the decoder's own parameter names.
 *
 * Hugging Face applies RoPE with rotate_half (pairs (i, i + hd/2)); llama2.c and Meta's original
 * weights pair (2i, 2i+1). Writing a model of the interleaved kind permutes the q and k rows of
 * every head to the rotate-half order, as the transformers conversion script does, so the written
 * folder computes the same function.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { type LlamaConfig, type RopeScaling, validateConfig } from "./config.ts";
import {
  readSafetensorsFile,
  readSafetensorsHeaderFile,
  readSafetensorsRawFile,
  type SafetensorsDtype,
  type SafetensorsHeader,
  widenRaw,
  writeSafetensorsFile,
} from "./safetensors.ts";
import { StoredTensor } from "./stored.ts";
import { writeFileAtomic } from "./util/io.ts";
import { hfInLayerName } from "./util/hf_names.ts";
import { isStorableWeight, LlamaModel } from "./llama.ts";

/** Architectures this reader understands, with what each adds to plain Llama. */
export const HF_ARCHITECTURES: Record<string, { qkvBias: boolean; qkNorm: boolean }> = {
  LlamaForCausalLM: { qkvBias: false, qkNorm: false },
  Qwen2ForCausalLM: { qkvBias: true, qkNorm: false },
  Qwen3ForCausalLM: { qkvBias: false, qkNorm: true },
};

/** The per-layer tensors a checkpoint holds, by our name (biases only where Qwen2 has them). */
const LAYER_TENSORS = [
  "attn_norm.weight",
  "mlp_norm.weight",
  "attn.q.weight",
  "attn.k.weight",
  "attn.v.weight",
  "attn.o.weight",
  "attn.q.bias",
  "attn.k.bias",
  "attn.v.bias",
  "attn.q_norm.weight",
  "attn.k_norm.weight",
  "mlp.gate.weight",
  "mlp.up.weight",
  "mlp.down.weight",
];

/** [Hugging Face name, our name] of each per-layer tensor, from the one layer-name table. */
const LAYER_NAME_MAP: [string, string][] = LAYER_TENSORS.map((own) => [hfInLayerName(own)!, own]);

/** Map a Hugging Face tensor name to the decoder's name (null for names we ignore). */
export function fromHfName(name: string): string | null {
  if (name === "model.embed_tokens.weight") return "embed.weight";
  if (name === "model.norm.weight") return "norm.weight";
  if (name === "lm_head.weight") return "lm_head.weight";
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const hit = LAYER_NAME_MAP.find(([hf]) => hf === m[2]);
    if (hit) return `layers.${m[1]}.${hit[1]}`;
  }
  // Rotary inverse-frequency buffers are recomputed from the config.
  if (/rotary_emb\.inv_freq$/.test(name)) return null;
  return name; // left as-is so fromWeights reports it as unexpected
}

/** Map a decoder parameter name to its Hugging Face name. */
export function toHfName(name: string): string {
  if (name === "embed.weight") return "model.embed_tokens.weight";
  if (name === "norm.weight") return "model.norm.weight";
  if (name === "lm_head.weight") return "lm_head.weight";
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  const hit = m && LAYER_NAME_MAP.find(([, own]) => own === m[2]);
  if (!m || !hit) throw new Error(`no Hugging Face name for parameter '${name}'`);
  return `model.layers.${m[1]}.${hit[0]}`;
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(`${what} not found: ${path}`);
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${path}: invalid JSON in ${what}`);
  }
}

/** The `config.json` key of each decoder config field, for errors that name what to fix. */
export const HF_CONFIG_KEYS: Readonly<Partial<Record<keyof LlamaConfig, string>>> = {
  dim: "hidden_size",
  hiddenDim: "intermediate_size",
  nLayers: "num_hidden_layers",
  nHeads: "num_attention_heads",
  nKvHeads: "num_key_value_heads",
  headDim: "head_dim",
  vocabSize: "vocab_size",
  maxSeqLen: "max_position_embeddings",
};

/** Turn a Hugging Face `config.json` object into a decoder config (sizes bounded, see CONFIG_LIMITS). */
export function configFromHf(hf: Record<string, unknown>, source = "config.json"): LlamaConfig {
  const arch = Array.isArray(hf.architectures) ? String(hf.architectures[0]) : String(hf.model_type ?? "");
  const kind = HF_ARCHITECTURES[arch];
  if (!kind) {
    throw new Error(
      `${source}: unknown architecture '${arch}'; supported: ${Object.keys(HF_ARCHITECTURES).join(", ")}`,
    );
  }
  const num = (key: string, fallback?: number): number => {
    const v = hf[key] ?? fallback;
    if (typeof v !== "number") throw new Error(`${source}: missing numeric field '${key}'`);
    return v;
  };
  const idOf = (key: string): number | null => {
    const v = hf[key];
    if (typeof v === "number") return v;
    if (Array.isArray(v) && typeof v[0] === "number") return v[0];
    return null;
  };
  const nHeads = num("num_attention_heads");
  return validateConfig(
    {
      architecture: arch,
      dim: num("hidden_size"),
      hiddenDim: num("intermediate_size"),
      nLayers: num("num_hidden_layers"),
      nHeads,
      nKvHeads: num("num_key_value_heads", nHeads),
      headDim: typeof hf.head_dim === "number" ? hf.head_dim : num("hidden_size") / nHeads,
      vocabSize: num("vocab_size"),
      maxSeqLen: num("max_position_embeddings", 2048),
      normEps: num("rms_norm_eps", 1e-6),
      ropeTheta: num("rope_theta", 10000),
      ropeStyle: "half",
      ropeScaling: ropeScalingFromHf(hf.rope_scaling, source),
      tiedEmbeddings: Boolean(hf.tie_word_embeddings ?? false),
      qkNorm: kind.qkNorm,
      qkvBias: kind.qkvBias || Boolean(hf.attention_bias),
      bosId: idOf("bos_token_id"),
      eosId: idOf("eos_token_id"),
      padId: idOf("pad_token_id"),
    },
    source,
    HF_CONFIG_KEYS,
  );
}

/**
 * A `rope_scaling` entry of `config.json` (null or absent: none). Types that change nothing within
 * the trained context (`default`) are none; `linear` and `llama3` are applied; the others (yarn,
 * dynamic, longrope) are refused rather than silently ignored.
 */
export function ropeScalingFromHf(raw: unknown, source = "config.json"): RopeScaling | null {
  if (raw === null || raw === undefined) return null;
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  const num = (key: string): number => {
    const v = r[key];
    if (typeof v !== "number" || !(v > 0)) {
      throw new Error(`${source}: rope_scaling.${key} must be a positive number`);
    }
    return v;
  };
  if (type === "default") return null;
  if (type === "linear") return { type, factor: num("factor") };
  if (type === "llama3") {
    const scaling = {
      type,
      factor: num("factor"),
      lowFreqFactor: num("low_freq_factor"),
      highFreqFactor: num("high_freq_factor"),
      originalMaxPositionEmbeddings: num("original_max_position_embeddings"),
    } as const;
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
      throw new Error(`${source}: rope_scaling.high_freq_factor must exceed low_freq_factor`);
    }
    return scaling;
  }
  throw new Error(
    `${source}: rope_scaling type '${
      String(type)
    }' is not supported (peft-bench applies linear and llama3); ` +
      "use a model without it",
  );
}

/** A {@link RopeScaling} as `config.json` writes it. */
function ropeScalingToHf(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  if (s.type === "linear") return { rope_type: "linear", factor: s.factor };
  return {
    rope_type: "llama3",
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/** The `config.json` object for a decoder config (rotate-half RoPE, as Hugging Face computes). */
export function configToHf(c: LlamaConfig): Record<string, unknown> {
  const arch = HF_ARCHITECTURES[c.architecture]
    ? c.architecture
    : c.qkNorm
    ? "Qwen3ForCausalLM"
    : c.qkvBias
    ? "Qwen2ForCausalLM"
    : "LlamaForCausalLM";
  return {
    architectures: [arch],
    model_type: arch === "LlamaForCausalLM" ? "llama" : arch === "Qwen2ForCausalLM" ? "qwen2" : "qwen3",
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToHf(c.ropeScaling),
    tie_word_embeddings: c.tiedEmbeddings,
    attention_bias: c.qkvBias && arch === "LlamaForCausalLM",
    hidden_act: "silu",
    bos_token_id: c.bosId ?? null,
    eos_token_id: c.eosId ?? null,
    pad_token_id: c.padId ?? null,
    torch_dtype: "float32",
  };
}

/**
 * Permute the rows of a q/k projection (or bias, or per-head norm gain) from interleaved RoPE
 * pairs to rotate-half order: within each head, new row c*(hd/2) + i takes old row 2i + c.
 */
export function interleavedToHalf(data: Float32Array, nHeads: number, headDim: number): Float32Array {
  const rowLen = data.length / (nHeads * headDim);
  const out = new Float32Array(data.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let c = 0; c < 2; c++) {
        const from = (h * headDim + 2 * i + c) * rowLen;
        const to = (h * headDim + c * half + i) * rowLen;
        out.set(data.subarray(from, from + rowLen), to);
      }
    }
  }
  return out;
}

/**
 * Rows of a tensor of our module `name` whose rows are that module's outputs (a weight, a bias, a
 * per-head norm gain, or an adapter tensor over the same outputs such as LoRA's B), in the row order
 * of the Hugging Face checkpoint {@link writeHfFolder} writes: for an interleaved-RoPE config the q
 * and k rows (and the q/k norm gains) are permuted to rotate-half order ({@link interleavedToHalf});
 * anything else is returned as is. `name` is a layer or parameter name (`layers.0.attn.q`,
 * `layers.0.attn.k.bias`, `layers.0.attn.q_norm.weight`). Checkpoint conversion and the PEFT
 * exports share it, so an adapter lines up with the converted base.
 */
export function hfRowOrder(name: string, data: Float32Array, c: LlamaConfig): Float32Array {
  if (c.ropeStyle !== "interleaved") return data;
  const m = /(?:^|\.)attn\.(q|k|q_norm|k_norm)(?:\.(?:weight|bias))?$/.exec(name);
  if (!m) return data;
  const heads = m[1] === "q" ? c.nHeads : m[1] === "k" ? c.nKvHeads : 1;
  return interleavedToHalf(data, heads, c.headDim);
}

/** One safetensors file of a folder with its checked header. */
export interface HfShard {
  path: string;
  header: SafetensorsHeader;
}

/** A Hugging Face folder checked without reading tensor data: its config and shard headers. */
export interface HfFolderInfo {
  config: LlamaConfig;
  shards: HfShard[];
}

/** A shard name in an index: a plain file name in the folder (no path, so it cannot point outside). */
const SHARD_NAME = /^[^/\\]+\.safetensors$/;

/** The index's weight map (tensor name to shard file), checked; null when the folder has no index. */
async function readWeightMap(dir: string): Promise<Record<string, string> | null> {
  const indexPath = join(dir, "model.safetensors.index.json");
  try {
    await Deno.stat(indexPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const map = (await readJson(indexPath, "safetensors index")).weight_map;
  if (!map || typeof map !== "object" || Array.isArray(map)) {
    throw new Error(`${indexPath}: missing 'weight_map'`);
  }
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || !SHARD_NAME.test(file)) {
      throw new Error(
        `${indexPath}: weight_map['${name}'] is ${
          JSON.stringify(file)
        }; it must name a .safetensors file in the folder`,
      );
    }
  }
  return map as Record<string, string>;
}

/** Read the header of each shard; a missing file names the index that lists it. */
async function readShardHeaders(dir: string, weightMap: Record<string, string> | null): Promise<HfShard[]> {
  const files = weightMap ? [...new Set(Object.values(weightMap))].sort() : ["model.safetensors"];
  const shards: HfShard[] = [];
  for (const file of files) {
    const path = join(dir, file);
    try {
      shards.push({ path, header: await readSafetensorsHeaderFile(path) });
    } catch (err) {
      if (!(await exists(path))) {
        // A hub cache snapshot holds links to blobs: a link whose blob is gone is a missing file too.
        const target = await Deno.readLink(path).catch(() => null);
        if (target !== null) {
          throw new Error(`${path} links to ${target}, which is missing; re-download the model`);
        }
        throw new Error(
          weightMap
            ? `${path} is listed in model.safetensors.index.json but missing; re-download the model`
            : `${dir} has neither model.safetensors nor model.safetensors.index.json (check --model)`,
        );
      }
      throw err;
    }
  }
  return shards;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Every tensor of the index is in the shard the index names. */
function checkWeightMap(weightMap: Record<string, string>, shards: HfShard[]): void {
  const byFile = new Map(shards.map((s) => [s.path, new Set(s.header.entries.map((e) => e.name))]));
  for (const shard of shards) {
    const file = basename(shard.path);
    for (const [name, f] of Object.entries(weightMap)) {
      if (f === file && !byFile.get(shard.path)!.has(name)) {
        throw new Error(
          `${shard.path}: has no tensor '${name}' although model.safetensors.index.json puts it there; re-download the model`,
        );
      }
    }
  }
}

/** The layer count of the tensors present must be the config's, before anything is sized by it. */
function checkLayerCount(config: LlamaConfig, configPath: string, shards: HfShard[]): void {
  const layers = new Set<number>();
  for (const s of shards) {
    for (const e of s.header.entries) {
      const m = /^model\.layers\.(\d+)\./.exec(e.name);
      if (m) layers.add(Number(m[1]));
    }
  }
  if (layers.size !== config.nLayers) {
    const held = layers.size === 0
      ? "no layers"
      : `${layers.size} layers (indices ${Math.min(...layers)} to ${Math.max(...layers)})`;
    throw new Error(
      `${configPath}: num_hidden_layers is ${config.nLayers} but the safetensors files hold ${held}; fix num_hidden_layers or use the weights of this config`,
    );
  }
}

const shapeText = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/**
 * Check every tensor against the config: a float dtype, a name the config uses, the full shape it
 * implies, in one shard only; and no tensor the config needs missing. Errors name the tensor and
 * the file, and give both shapes.
 */
export function checkHfTensors(config: LlamaConfig, configPath: string, shards: HfShard[]): void {
  checkLayerCount(config, configPath, shards);
  const shapes = LlamaModel.parameterShapes(config);
  const seen = new Map<string, string>();
  for (const { path, header } of shards) {
    for (const e of header.entries) {
      const name = fromHfName(e.name);
      if (name === null || (name === "lm_head.weight" && config.tiedEmbeddings)) continue;
      if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16") {
        throw new Error(
          `${path}: tensor '${e.name}' has dtype ${e.dtype}; model weights must be F32, F16 or BF16`,
        );
      }
      const want = shapes.get(name);
      if (!want) {
        throw new Error(
          `${path}: unexpected tensor '${e.name}', not part of a ${config.architecture} with ${configPath}; the weights do not match the config`,
        );
      }
      if (e.shape.length !== want.length || e.shape.some((d, i) => d !== want[i])) {
        throw new Error(
          `${path}: tensor '${e.name}' has shape ${shapeText(e.shape)} but ${configPath} implies ${
            shapeText(want)
          }; the weights do not match the config`,
        );
      }
      const other = seen.get(name);
      if (other) throw new Error(`${path}: tensor '${e.name}' is also in ${other}; keep one copy`);
      seen.set(name, path);
    }
  }
  for (const [name, shape] of shapes) {
    if (!seen.has(name)) {
      throw new Error(
        `${dirname(configPath)}: missing tensor '${toHfName(name)}' (shape ${
          shapeText(shape)
        }) required by ${configPath}`,
      );
    }
  }
}

/**
 * Read and check a Hugging Face folder without reading tensor data: the config (sizes within
 * bounds), the index, every shard's header, and every tensor's name, dtype and shape against the
 * config. Throws one line naming the file and the problem; cheap enough to run before any work.
 */
export async function inspectHfFolder(dir: string): Promise<HfFolderInfo> {
  const configPath = join(dir, "config.json");
  const config = configFromHf(await readJson(configPath, "model config"), configPath);
  const weightMap = await readWeightMap(dir);
  const shards = await readShardHeaders(dir, weightMap);
  if (weightMap) checkWeightMap(weightMap, shards);
  checkHfTensors(config, configPath, shards);
  return { config, shards };
}

/** Read a Hugging Face folder's config and weights (single file or sharded), checked as {@link inspectHfFolder}. */
export async function readHfFolder(
  dir: string,
): Promise<{ config: LlamaConfig; weights: Map<string, Float32Array> }> {
  const { config, shards } = await inspectHfFolder(dir);
  const weights = new Map<string, Float32Array>();
  for (const { path } of shards) {
    const { tensors } = await readSafetensorsFile(path);
    for (const [hfName, t] of tensors) {
      const name = fromHfName(hfName);
      if (name === null || (name === "lm_head.weight" && config.tiedEmbeddings)) continue;
      if (!(t.data instanceof Float32Array)) {
        throw new Error(`${path}: tensor '${hfName}' changed while loading`);
      }
      weights.set(name, t.data);
    }
  }
  return { config, weights };
}

/**
 * Read a Hugging Face folder as {@link readHfFolder} does, keeping the weights that may live off
 * the heap ({@link isStorableWeight}: linear weights and the embedding table) as
 * {@link StoredTensor}s in their stored precision (F32, F16 or BF16, never widened); norm gains and
 * biases are widened to float32. Tensors are read one at a time, so the peak is the stored bytes.
 */
export async function readHfFolderStored(
  dir: string,
): Promise<{ config: LlamaConfig; weights: Map<string, Float32Array | StoredTensor> }> {
  const { config, shards } = await inspectHfFolder(dir);
  const weights = new Map<string, Float32Array | StoredTensor>();
  for (const { path, header } of shards) {
    const tensors = await readSafetensorsRawFile(path, header);
    for (const [hfName, t] of tensors) {
      const name = fromHfName(hfName);
      if (name === null || (name === "lm_head.weight" && config.tiedEmbeddings)) continue;
      if (isStorableWeight(name) && (t.dtype === "F32" || t.dtype === "F16" || t.dtype === "BF16")) {
        weights.set(name, new StoredTensor(t.dtype, t.data as Float32Array | Uint16Array, t.shape));
      } else {
        weights.set(name, widenRaw(t) as Float32Array);
      }
      tensors.delete(hfName); // lets each shard's buffers go as soon as they are wrapped
    }
  }
  return { config, weights };
}

/** Options for {@link writeHfFolder}. */
export interface WriteHfOptions {
  /** Storage dtype of the weights (default F32). */
  dtype?: Extract<SafetensorsDtype, "F32" | "F16" | "BF16">;
  /** Contents of `tokenizer.json`, copied into the folder when given. */
  tokenizerJson?: string;
}

/**
 * Write a decoder as a Hugging Face folder (`config.json`, `model.safetensors`, optional
 * `tokenizer.json`). Interleaved-RoPE weights are permuted to rotate-half order.
 */
export async function writeHfFolder(
  dir: string,
  config: LlamaConfig,
  weights: Map<string, Float32Array>,
  options: WriteHfOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? "F32";
  const tensors = new Map<string, { data: Float32Array; shape: number[]; dtype: typeof dtype }>();
  const c = config;
  const shapes = LlamaModel.parameterShapes(c);
  for (const [name, data] of weights) {
    const out = hfRowOrder(name, data, c);
    const shape = shapes.get(name);
    if (!shape) throw new Error(`writeHfFolder: parameter '${name}' is not part of this config`);
    tensors.set(toHfName(name), { data: out, shape, dtype });
  }
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensorsFile(join(dir, "model.safetensors"), tensors, { format: "pt" });
  await writeFileAtomic(
    join(dir, "config.json"),
    JSON.stringify(configToHf({ ...c, ropeStyle: "half" }), null, 2) + "\n",
  );
  if (options.tokenizerJson) await writeFileAtomic(join(dir, "tokenizer.json"), options.tokenizerJson);
}
