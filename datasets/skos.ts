/**
 * A SKOS thesaurus as a concept-retrieval task (same options and rules as wordnet-concepts,
 * see concepts.ts).
 *
 * Formats by extension: Turtle `.ttl`, N-Triples `.nt`, N-Quads `.nq`, TriG `.trig` (n3);
 * RDF/XML `.rdf`/`.xml`/`.owl` (rdfxml-streaming-parser); JSON-LD `.jsonld`/`.json`
 * (jsonld-streaming-parser; only inline `@context`s, remote ones cannot be fetched offline).
 *
 * Concepts: subjects typed skos:Concept or carrying a skos:prefLabel. Labels: the prefLabel, then
 * altLabels, in the requested language (`lang`, default "en"; a tag matches on its primary
 * subtag, so "en" takes "en-GB"; untagged literals count for every language). Query: the first
 * skos:definition in that language, else the first skos:scopeNote. Broader/narrower: skos:broader
 * and skos:narrower, each also read in reverse. Split: fixed, `hashSplit(concept IRI)` (~80/10/10).
 * @module
 */
import { Parser, type Quad } from "n3";
import { RdfXmlParser } from "rdfxml-streaming-parser";
import { JsonLdParser } from "jsonld-streaming-parser";
import { extname } from "node:path";
import { buildConceptRetrieval, type Concept, type ConceptRetrievalOptions } from "./concepts.ts";
import { DEFAULT_SPLIT_SEED, hashSplit } from "./split.ts";
import { readTextFile } from "./text_io.ts";
import { dataOptionFlag } from "./options.ts";
import type { RetrievalDataset } from "./types.ts";

const SKOS = "http://www.w3.org/2004/02/skos/core#";
const RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/** Options of {@link loadSkos}. */
export type SkosOptions = ConceptRetrievalOptions & { lang?: string; splitSeed?: number; name?: string };

/** Minimal triple view shared by the three parsers. */
interface Triple {
  s: string;
  p: string;
  o: string;
  isLiteral: boolean;
  lang: string;
}

async function readTriples(path: string): Promise<Triple[]> {
  const text = await readTextFile(path, "SKOS thesaurus");
  const ext = extname(path).toLowerCase();
  const n3Formats: Record<string, string> = {
    ".ttl": "Turtle",
    ".nt": "N-Triples",
    ".nq": "N-Quads",
    ".trig": "TriG",
  };
  let quads: Quad[];
  try {
    if (n3Formats[ext]) quads = new Parser({ format: n3Formats[ext] }).parse(text);
    else if ([".rdf", ".xml", ".owl"].includes(ext)) {
      quads = await streamParse(new RdfXmlParser({ trackPosition: true }), text);
    } else if ([".jsonld", ".json"].includes(ext)) quads = await streamParse(new JsonLdParser(), text);
    else {
      throw new Error(`unknown RDF format "${ext}"; use .ttl, .nt, .nq, .trig, .rdf/.xml/.owl or .jsonld`);
    }
  } catch (err) {
    // n3 messages already say "on line N"; the others say "Line N column M" or nothing.
    throw new Error(`${path}: ${(err as Error).message.replace(/\.?\s*$/, "")}; fix the RDF syntax there`);
  }
  return quads.map((q) => ({
    s: q.subject.value,
    p: q.predicate.value,
    o: q.object.value,
    isLiteral: q.object.termType === "Literal",
    lang: q.object.termType === "Literal" ? (q.object as { language: string }).language.toLowerCase() : "",
  }));
}

interface StreamParser {
  // deno-lint-ignore no-explicit-any
  on(event: string, fn: (...args: any[]) => void): unknown;
  write(chunk: string): unknown;
  end(): unknown;
}

function streamParse(parser: StreamParser, text: string): Promise<Quad[]> {
  return new Promise((resolve, reject) => {
    const quads: Quad[] = [];
    parser.on("data", (q: Quad) => quads.push(q));
    parser.on("error", reject);
    parser.on("end", () => resolve(quads));
    parser.write(text);
    parser.end();
  });
}

/** Load a SKOS file as a concept-retrieval dataset (see module note). */
export async function loadSkos(path: string, options: SkosOptions = {}): Promise<RetrievalDataset> {
  const lang = (options.lang ?? "en").toLowerCase();
  const triples = await readTriples(path);
  const inLang = (t: Triple) =>
    t.isLiteral && (t.lang === "" || t.lang === lang || t.lang.startsWith(`${lang}-`));
  type Acc = {
    pref: string[];
    alt: string[];
    def: string[];
    note: string[];
    broader: Set<string>;
    narrower: Set<string>;
  };
  const acc = new Map<string, Acc>();
  const get = (id: string): Acc => {
    let a = acc.get(id);
    if (!a) {
      acc.set(id, a = { pref: [], alt: [], def: [], note: [], broader: new Set(), narrower: new Set() });
    }
    return a;
  };
  const isConcept = new Set<string>();
  const languages = new Set<string>();
  for (const t of triples) {
    if (t.p === RDF_TYPE && t.o === `${SKOS}Concept`) isConcept.add(t.s);
    if (!t.p.startsWith(SKOS)) continue;
    const local = t.p.slice(SKOS.length);
    if (local === "prefLabel") {
      isConcept.add(t.s);
      languages.add(t.lang || "(untagged)");
    }
    if (local === "broader" && !t.isLiteral) (get(t.s).broader.add(t.o), get(t.o).narrower.add(t.s));
    if (local === "narrower" && !t.isLiteral) (get(t.s).narrower.add(t.o), get(t.o).broader.add(t.s));
    if (!inLang(t)) continue;
    const text = t.o.trim().replace(/\s+/g, " ");
    if (text === "") continue;
    if (local === "prefLabel") get(t.s).pref.push(text);
    else if (local === "altLabel") get(t.s).alt.push(text);
    else if (local === "definition") get(t.s).def.push(text);
    else if (local === "scopeNote") get(t.s).note.push(text);
  }
  const concepts: Concept[] = [];
  for (const id of isConcept) {
    const a = get(id);
    const labels = [...new Set([...a.pref.slice(0, 1), ...a.alt])];
    if (a.pref.length === 0) continue; // no label in this language: not a document
    concepts.push({
      id,
      labels,
      definition: a.def[0] ?? a.note[0],
      broader: [...a.broader].filter((b) => isConcept.has(b)),
      narrower: [...a.narrower].filter((n) => isConcept.has(n)),
      split: hashSplit(id),
    });
  }
  if (concepts.length === 0) {
    const found = [...languages].sort();
    const tagged = found.find((l) => l !== "(untagged)");
    const fix = tagged === undefined
      ? "add skos:prefLabel labels to the concepts"
      : `pick one with ${dataOptionFlag("lang", tagged)}`;
    throw new Error(
      `${path}: no skos:prefLabel in language "${lang}" (languages found: ${
        found.join(", ") || "none"
      }); ${fix}`,
    );
  }
  const ds = buildConceptRetrieval(
    options.name ?? `skos:${path}`,
    concepts,
    options,
    options.splitSeed ?? DEFAULT_SPLIT_SEED,
  );
  if (ds.queries.test.length === 0) {
    throw new Error(
      `${path}: no test queries (${concepts.length} concepts, ${
        concepts.filter((c) => c.definition).length
      } with a definition in "${lang}"); add skos:definition or skos:scopeNote texts`,
    );
  }
  return ds;
}
