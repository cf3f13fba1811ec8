import assert from "node:assert/strict";
import { heldOutTexts, pretrainCorpus } from "./pretrain_corpus.ts";
import { sotu } from "./sotu.ts";
import { wordnetConcepts, wordnetGlosses, wordnetLex } from "./wordnet_tasks.ts";
import { nounByOffset } from "./wordnet.ts";
import { wordnetSplit } from "./wordnet_tasks.ts";

const { texts, stats } = pretrainCorpus();
const corpus = new Set(texts);

Deno.test("pretrain corpus: no evaluated text of any default task", () => {
  const all = { maxDev: Infinity, maxTest: Infinity };
  const lex = wordnetLex(all);
  const con = wordnetConcepts({ maxDevQueries: Infinity, maxTestQueries: Infinity });
  const conH = wordnetConcepts({ withHypernym: true });
  const evaluated = [
    ...lex.dev,
    ...lex.test,
    ...con.queries.dev,
    ...con.queries.test,
    ...con.corpus.dev,
    ...con.corpus.test,
    ...conH.corpus.dev,
    ...conH.corpus.test,
    ...wordnetGlosses(all).test,
    ...sotu().test,
  ];
  assert.ok(evaluated.length > 30000);
  for (const e of evaluated) assert.ok(!corpus.has(e.text), `leaked: ${e.id}`);
  const held = heldOutTexts();
  assert.ok(held.wordnet.length > 7000 && held.sotu.length > 10);
  for (const t of [...held.wordnet, ...held.sotu]) assert.ok(!corpus.has(t));
});

Deno.test("pretrain corpus: holds train-pool glosses, other POS glosses and SOTU train", () => {
  // canine (02085998) and entity (00001740): whichever is in the train pool must be present.
  for (const off of ["02085998", "00001740", "02086723", "01325095"]) {
    const s = nounByOffset(off)!;
    assert.equal(corpus.has(s.gloss), wordnetSplit(off) === "train", off);
  }
  assert.ok(stats.nounGlosses > 60000 && stats.otherGlosses > 30000);
  assert.equal(stats.sotuSpeeches, sotu().train.length);
  assert.equal(texts.length, stats.nounGlosses + stats.otherGlosses + stats.sotuSpeeches);
});
