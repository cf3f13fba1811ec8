import assert from "node:assert/strict";
import { join } from "node:path";
import {
  glossDefinition,
  LEXNAMES,
  loadWordNet,
  nounByOffset,
  parseDataFile,
  wordnetDictPath,
} from "./wordnet.ts";

Deno.test("WordNet 3.1 nouns: count matches the data lines of data.noun", () => {
  // Independent count: every line of data.noun that does not start with a space is a synset.
  const raw = Deno.readTextFileSync(join(wordnetDictPath(), "data.noun"));
  const dataLines = raw.split("\n").filter((l) => l.length > 0 && !l.startsWith(" ")).length;
  assert.equal(loadWordNet("noun").length, dataLines);
  assert.equal(dataLines, 82192); // WordNet 3.1 has 82,192 noun synsets (wnstats)
});

Deno.test("dog (domestic dog) is noun.animal with hypernym canine", () => {
  const dog = nounByOffset("02086723")!;
  assert.deepEqual(dog.words, ["dog", "domestic dog", "Canis familiaris"]);
  assert.equal(dog.lexname, "noun.animal");
  const hypernyms = dog.pointers.filter((p) => p.symbol === "@").map((p) => nounByOffset(p.offset)!.words[0]);
  assert.ok(hypernyms.includes("canine"), `hypernyms: ${hypernyms}`);
  assert.ok(hypernyms.includes("domestic animal"));
  assert.ok(dog.gloss.startsWith("a member of the genus Canis"));
  assert.ok(!dog.gloss.includes('"'), "examples are cut from the gloss");
  assert.ok(dog.rawGloss.includes('"the dog barked all night"'));
});

Deno.test("entity is the noun.Tops root; all 26 noun lexicographer classes occur", () => {
  const entity = nounByOffset("00001740")!;
  assert.deepEqual(entity.words, ["entity"]);
  assert.equal(entity.lexname, "noun.Tops");
  assert.equal(entity.pointers.filter((p) => p.symbol === "@").length, 0);
  const classes = new Set(loadWordNet("noun").map((s) => s.lexname));
  assert.equal(classes.size, 26);
  assert.deepEqual([...classes].sort(), LEXNAMES.filter((n) => n.startsWith("noun.")).sort());
});

Deno.test("gloss rule cuts at the first quoted example only", () => {
  assert.equal(glossDefinition('a young dog; "the puppy slept"; "another"'), "a young dog");
  assert.equal(
    glossDefinition("no examples here; just a second clause  "),
    "no examples here; just a second clause",
  );
});

Deno.test("adjective markers are dropped and underscores become spaces", () => {
  const adj = loadWordNet("adj");
  const handy = adj.find((s) => s.offset === "00019769")!;
  assert.deepEqual(handy.words, ["handy", "ready to hand"]);
});

Deno.test("malformed data line names file and line", () => {
  const text = "  license header\n00001740 03 n 01 entity 0 000 | ok\n00001741 03 n 01\n";
  assert.throws(() => parseDataFile(text, "x/data.noun"), /^Error: x\/data\.noun:3: /);
});

Deno.test("pointers parse on first read; a truncated pointer list names file and line then", () => {
  const text =
    "00001740 03 n 01 entity 0 001 ~ 00001930 n 0000 | ok\n00001741 03 n 01 thing 0 002 @ 00001740 n | x\n";
  const [entity, thing] = parseDataFile(text, "x/data.noun");
  assert.deepEqual(entity.pointers, [{ symbol: "~", offset: "00001930", pos: "n", lexical: false }]);
  assert.equal(thing.gloss, "x");
  assert.throws(() => thing.pointers, /^Error: x\/data\.noun:2: truncated synset line/);
});
