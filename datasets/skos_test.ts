import assert from "node:assert/strict";
import { join } from "node:path";
import { loadSkos } from "./skos.ts";
import type { RetrievalDataset } from "./types.ts";

const dir = await Deno.makeTempDir({ prefix: "peft-skos-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// A 60-concept tree: c_i's parent is c_floor((i-1)/3); even concepts have a definition, odd a scopeNote.
const N = 60;
const parent = (i: number) => Math.floor((i - 1) / 3);
const iri = (i: number) => `http://example.org/c${i}`;
function turtle(): string {
  const out = ["@prefix skos: <http://www.w3.org/2004/02/skos/core#> ."];
  for (let i = 0; i < N; i++) {
    const note = i % 2 === 0 ? `skos:definition "definition ${i}"@en` : `skos:scopeNote "note ${i}"@en-GB`;
    // Half the links are stated as broader on the child, half as narrower on the parent.
    const link = i === 0 ? "" : i % 2 === 0 ? `; skos:broader <${iri(parent(i))}> ` : "";
    out.push(`<${iri(i)}> a skos:Concept ; skos:prefLabel "concept ${i}"@en, "Begriff ${i}"@de ;
      skos:altLabel "alt ${i}"@en ; ${note} ${link}${
      i % 3 === 0 ? `; skos:definition "Definition ${i}"@de ` : ""
    }.`);
    if (i > 0 && i % 2 === 1) out.push(`<${iri(parent(i))}> skos:narrower <${iri(i)}> .`);
  }
  return out.join("\n");
}
const ttl = join(dir, "t.ttl");
Deno.writeTextFileSync(ttl, turtle());

function allDocs(ds: RetrievalDataset) {
  return [...ds.corpus.train, ...ds.corpus.dev, ...ds.corpus.test];
}

Deno.test("skos turtle: labels, definitions/scope notes, broader/narrower in both directions", async () => {
  const ds = await loadSkos(ttl, { neighborCredit: true, withHypernym: true });
  const docs = allDocs(ds);
  assert.equal(docs.length, N);
  assert.equal(docs.find((d) => d.id === iri(7))!.text, `concept 7, alt 7 (concept ${parent(7)})`);
  assert.ok(ds.queries.test.length > 0);
  for (const split of ["train", "dev", "test"] as const) {
    const inSplit = new Set(ds.corpus[split].map((d) => d.id));
    for (const q of ds.queries[split]) {
      const i = Number(q.id.slice(q.id.lastIndexOf("c") + 1));
      assert.equal(q.text, i % 2 === 0 ? `definition ${i}` : `note ${i}`);
      const expected = new Map([[q.id, 2]]);
      const neighbors = [...(i > 0 ? [parent(i)] : []), 3 * i + 1, 3 * i + 2, 3 * i + 3].filter((j) => j < N);
      for (const j of neighbors) if (inSplit.has(iri(j))) expected.set(iri(j), 1);
      assert.deepEqual(ds.qrels[split].get(q.id), expected);
    }
  }
});

Deno.test("skos: language selection", async () => {
  const de = await loadSkos(ttl, { lang: "de" });
  assert.equal(allDocs(de).find((d) => d.id === iri(3))!.text, "Begriff 3");
  const queries = [...de.queries.train, ...de.queries.dev, ...de.queries.test];
  assert.equal(queries.length, N / 3); // only every third concept has a German definition
  assert.ok(queries.every((q) => q.text.startsWith("Definition ")));
});

Deno.test("skos errors: no labels in language, syntax error with line", async () => {
  await assert.rejects(
    () => loadSkos(ttl, { lang: "fr" }),
    /t\.ttl: no skos:prefLabel in language "fr" \(languages found: de, en\); pick one with --data-opt lang=de$/,
  );
  const bad = join(dir, "bad.ttl");
  Deno.writeTextFileSync(
    bad,
    '@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n<http://x/a> skos:prefLabel "a"@en .\n<http://x/b> skos:prefLabel .\n',
  );
  await assert.rejects(() => loadSkos(bad), /bad\.ttl: .*line 3/);
});

Deno.test("skos: RDF/XML and JSON-LD give the same dataset as Turtle", async () => {
  const xml = [`<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:skos="http://www.w3.org/2004/02/skos/core#">`];
  const graph = [];
  for (let i = 0; i < N; i++) {
    const note = i % 2 === 0 ? ["definition", "en", `definition ${i}`] : ["scopeNote", "en-GB", `note ${i}`];
    xml.push(`<skos:Concept rdf:about="${iri(i)}">
  <skos:prefLabel xml:lang="en">concept ${i}</skos:prefLabel><skos:prefLabel xml:lang="de">Begriff ${i}</skos:prefLabel>
  <skos:altLabel xml:lang="en">alt ${i}</skos:altLabel><skos:${note[0]} xml:lang="${note[1]}">${
      note[2]
    }</skos:${note[0]}>
  ${i > 0 ? `<skos:broader rdf:resource="${iri(parent(i))}"/>` : ""}</skos:Concept>`);
    graph.push({
      "@id": iri(i),
      "@type": "skos:Concept",
      "skos:prefLabel": [{ "@value": `concept ${i}`, "@language": "en" }, {
        "@value": `Begriff ${i}`,
        "@language": "de",
      }],
      "skos:altLabel": { "@value": `alt ${i}`, "@language": "en" },
      [`skos:${note[0]}`]: { "@value": note[2], "@language": note[1] },
      ...(i > 0 ? { "skos:broader": { "@id": iri(parent(i)) } } : {}),
    });
  }
  xml.push("</rdf:RDF>");
  const rdf = join(dir, "t.rdf"), jsonld = join(dir, "t.jsonld");
  Deno.writeTextFileSync(rdf, xml.join("\n"));
  Deno.writeTextFileSync(
    jsonld,
    JSON.stringify({ "@context": { skos: "http://www.w3.org/2004/02/skos/core#" }, "@graph": graph }),
  );
  const opts = { neighborCredit: true, withHypernym: true };
  const ref = await loadSkos(ttl, opts);
  for (const path of [rdf, jsonld]) {
    const ds = await loadSkos(path, opts);
    assert.deepEqual(
      allDocs(ds).sort((a, b) => a.id.localeCompare(b.id)),
      allDocs(ref).sort((a, b) => a.id.localeCompare(b.id)),
    );
    assert.deepEqual(ds.queries, ref.queries);
    assert.deepEqual(ds.qrels, ref.qrels);
  }
});
