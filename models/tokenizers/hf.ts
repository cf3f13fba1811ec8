/**
 * Hugging Face `tokenizer.json` tokenizers (through the `@huggingface/tokenizers` npm package), adapted
 * to the peft-bench {@link Tokenizer} interface.
 * @module
 */
import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import { dirname, join } from "node:path";
import { readFileOrExplain } from "../util/io.ts";
import type { EncodeOptions, Tokenizer } from "./types.ts";

/** Special-token names tried, in order, when tokenizer_config.json does not name them. */
const FALLBACK_NAMES = {
  bos: ["<|bos|>", "<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"],
  eos: ["<|eos|>", "</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"],
  pad: ["<|pad|>", "<pad>", "[PAD]", "<|finetune_right_pad_id|>"],
} as const;

/** tokenizer_config.json writes special tokens either as a string or as an AddedToken object. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/** A Hugging Face tokenizer behind the peft-bench interface. */
export class HfTokenizer implements Tokenizer {
  /** Largest id (vocab or added token) + 1. */
  readonly vocabSize: number;
  /** BOS id from tokenizer_config.json, else a conventional added token such as `<s>` or `<|bos|>`. */
  readonly bosId: number | null;
  /** EOS id, found like {@link bosId}. */
  readonly eosId: number | null;
  /** PAD id, found like {@link bosId}. */
  readonly padId: number | null;
  /** The underlying `@huggingface/tokenizers` object. */
  readonly inner: HfLibTokenizer;
  readonly #cleanUp: boolean;

  /**
   * Wrap a parsed tokenizer.json (and optional tokenizer_config.json). `source` names the file in errors.
   */
  constructor(json: Record<string, unknown>, config: Record<string, unknown> = {}, source = "<memory>") {
    if (!json || typeof json !== "object" || !json.model) {
      throw new Error(`${source}: not a Hugging Face tokenizer.json (no "model" entry)`);
    }
    // The JS library iterates added_tokens unconditionally; older files may omit it.
    const full = {
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...json,
    };
    try {
      this.inner = new HfLibTokenizer(full, config);
    } catch (err) {
      throw new Error(`${source}: @huggingface/tokenizers could not load it (${(err as Error).message})`);
    }
    const vocab = this.inner.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const find = (kind: "bos" | "eos" | "pad"): number | null => {
      const named = tokenName(config[`${kind}_token`]);
      const names = named !== undefined ? [named] : FALLBACK_NAMES[kind];
      for (const name of names) {
        const id = this.inner.token_to_id(name);
        if (id !== undefined) return id;
      }
      return null;
    };
    this.bosId = find("bos");
    this.eosId = find("eos");
    this.padId = find("pad");
    // Off unless the config asks: the clean-up rewrites " ." to "." and would break exact round trips.
    this.#cleanUp = config.clean_up_tokenization_spaces === true;
  }

  /** Encode without the file's own post-processor specials; BOS/EOS are added only when asked for. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.inner.encode(text, { add_special_tokens: false }).ids;
    if (opts.bos && this.bosId !== null) ids.unshift(this.bosId);
    if (opts.eos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  /** Decode ids, skipping special tokens. */
  decode(ids: number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`HF tokenizer decode: id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    if (ids.length === 0) return ""; // the library throws on an empty list
    return this.inner.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: this.#cleanUp });
  }
}

function parseJson(text: string, source: string): Record<string, unknown> {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: invalid JSON (${(err as Error).message})`);
  }
}

/** Build an {@link HfTokenizer} from tokenizer.json text (and optional tokenizer_config.json text). */
export function parseHfTokenizer(
  tokenizerJson: string,
  configJson?: string,
  source = "<memory>",
): HfTokenizer {
  const config = configJson === undefined ? {} : parseJson(configJson, `${source} (tokenizer_config.json)`);
  return new HfTokenizer(parseJson(tokenizerJson, source), config, source);
}

/**
 * Load a tokenizer.json file; a tokenizer_config.json beside it, when present, supplies the BOS/EOS/PAD
 * names and the clean-up setting.
 */
export async function loadHfTokenizer(path: string): Promise<HfTokenizer> {
  const text = new TextDecoder().decode(await readFileOrExplain(path, "Hugging Face tokenizer.json"));
  let config: string | undefined;
  try {
    config = await Deno.readTextFile(join(dirname(path), "tokenizer_config.json"));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return parseHfTokenizer(text, config, path);
}
