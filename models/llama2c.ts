/**
 * llama2.c checkpoint reader and writer (Karpathy's `run.c` format, version 0).
 *
 * Layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means a separate output head), then float32 tensors, each
 * matrix stored (out, in): token_embedding[V,dim], rms_att[L,dim], wq[L,dim,dim],
 * wk[L,kv_dim,dim], wv[L,kv_dim,dim], wo[L,dim,dim], rms_ffn[L,dim], w1[L,hidden,dim],
 * w2[L,dim,hidden], w3[L,hidden,dim], rms_final[dim], then 2 x seq_len x head_size/2 floats of
 * legacy RoPE tables (skipped), then wcls[V,dim] when not shared.
 * @module
 */
import { type LlamaConfig, validateConfig } from "./config.ts";

const HEADER_BYTES = 28;

/** A decoded llama2.c checkpoint. */
export interface Llama2cCheckpoint {
  config: LlamaConfig;
  weights: Map<string, Float32Array>;
}

/** The config of a llama2.c header and the float count its shapes need (tensors and RoPE tables). */
interface Llama2cLayout {
  config: LlamaConfig;
  /** Floats after the header that the shapes need. */
  needed: number;
}

/** Names of the header fields, for errors. */
const LLAMA2C_FIELDS: Partial<Record<keyof LlamaConfig, string>> = {
  dim: "dim",
  hiddenDim: "hidden_dim",
  nLayers: "n_layers",
  nHeads: "n_heads",
  nKvHeads: "n_kv_heads",
  vocabSize: "vocab_size",
  maxSeqLen: "seq_len",
};

/**
 * Check a llama2.c header (the first 28 bytes) against the file size: plausible sizes within
 * the config limits, and a file long enough for every tensor the sizes imply. Nothing is
 * allocated, so a header that claims a huge model fails at once.
 */
function llama2cLayout(header: Uint8Array, byteLength: number, source: string): Llama2cLayout {
  if (byteLength < HEADER_BYTES || header.byteLength < HEADER_BYTES) {
    throw new Error(`${source}: truncated llama2.c checkpoint (${byteLength} bytes, header needs 28)`);
  }
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const h = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = h;
  if (h.some((v, i) => i !== 5 && v <= 0) || signedVocab === 0 || dim % nHeads !== 0) {
    throw new Error(`${source}: not a llama2.c checkpoint (implausible header ${JSON.stringify(h)})`);
  }
  const vocabSize = Math.abs(signedVocab);
  const config = validateConfig(
    {
      architecture: "llama2.c",
      dim,
      hiddenDim,
      nLayers,
      nHeads,
      nKvHeads,
      vocabSize,
      maxSeqLen: seqLen,
      normEps: 1e-5,
      ropeTheta: 10000,
      ropeStyle: "interleaved",
      tiedEmbeddings: signedVocab > 0,
      bosId: 1,
      eosId: 2,
    },
    source,
    LLAMA2C_FIELDS,
  );
  const headSize = dim / nHeads;
  const kvDim = nKvHeads * headSize;
  const needed = vocabSize * dim +
    nLayers * (2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * dim * hiddenDim) + dim +
    seqLen * headSize + (config.tiedEmbeddings ? 0 : vocabSize * dim);
  const floats = (byteLength - HEADER_BYTES) / 4;
  if (!Number.isInteger(floats) || floats < needed) {
    throw new Error(
      `${source}: truncated llama2.c checkpoint: ${byteLength} bytes, the header's shapes need ${
        HEADER_BYTES + 4 * needed
      }`,
    );
  }
  return { config, needed };
}

/** Parse llama2.c checkpoint bytes; `source` names the file in errors. */
export function parseLlama2c(bytes: Uint8Array, source = "<memory>"): Llama2cCheckpoint {
  const { config } = llama2cLayout(bytes, bytes.byteLength, source);
  const { dim, hiddenDim, nLayers, vocabSize, maxSeqLen: seqLen } = config;
  const headSize = config.headDim;
  const kvDim = config.nKvHeads * headSize;
  const shared = config.tiedEmbeddings;
  const floats = (bytes.byteLength - HEADER_BYTES) / 4;
  // Copy into an aligned buffer: the file's float data starts at byte 28, but callers may pass a
  // view at any offset.
  const data = new Float32Array(floats);
  new Uint8Array(data.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + floats * 4));
  let offset = 0;
  const take = (n: number) => {
    const out = data.slice(offset, offset + n);
    offset += n;
    return out;
  };
  const weights = new Map<string, Float32Array>();
  weights.set("embed.weight", take(vocabSize * dim));
  const perLayer = (suffix: string, size: number) => {
    for (let l = 0; l < nLayers; l++) weights.set(`layers.${l}.${suffix}`, take(size));
  };
  perLayer("attn_norm.weight", dim);
  perLayer("attn.q.weight", dim * dim);
  perLayer("attn.k.weight", kvDim * dim);
  perLayer("attn.v.weight", kvDim * dim);
  perLayer("attn.o.weight", dim * dim);
  perLayer("mlp_norm.weight", dim);
  perLayer("mlp.gate.weight", hiddenDim * dim);
  perLayer("mlp.down.weight", dim * hiddenDim);
  perLayer("mlp.up.weight", hiddenDim * dim);
  weights.set("norm.weight", take(dim));
  offset += seqLen * headSize; // legacy freq_cis_real and freq_cis_imag
  if (!shared) weights.set("lm_head.weight", take(vocabSize * dim));
  return { config, weights };
}

function notFound(err: unknown, path: string): never {
  if (err instanceof Deno.errors.NotFound) throw new Error(`model file not found: ${path} (check --model)`);
  throw err;
}

/** Read a llama2.c checkpoint file. */
export async function readLlama2c(path: string): Promise<Llama2cCheckpoint> {
  const bytes = await Deno.readFile(path).catch((err) => notFound(err, path));
  return parseLlama2c(bytes, path);
}

/**
 * Check a llama2.c checkpoint from its 28-byte header and the file size, without reading the
 * weights; returns its config. Throws the same one-line errors as {@link parseLlama2c}.
 */
export async function inspectLlama2c(path: string): Promise<LlamaConfig> {
  const file = await Deno.open(path, { read: true }).catch((err) => notFound(err, path));
  try {
    const size = (await file.stat()).size;
    const header = new Uint8Array(HEADER_BYTES);
    let got = 0;
    while (got < HEADER_BYTES) {
      const n = await file.read(header.subarray(got));
      if (n === null) break;
      got += n;
    }
    return llama2cLayout(header.subarray(0, got), size, path).config;
  } finally {
    file.close();
  }
}
