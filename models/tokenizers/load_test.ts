import assert from "node:assert/strict";
import { loadTokenizer } from "./load.ts";
import { Llama2cTokenizer } from "./llama2c.ts";
import { HfTokenizer } from "./hf.ts";
import { trainBpeTokenizerJson } from "./bpe_train.ts";

import { STORIES_TOKENIZER as TOK } from "../fixtures.ts";

Deno.test("loadTokenizer dispatches on .bin, .json and folders", async () => {
  const l2c = await loadTokenizer(TOK);
  assert.ok(l2c instanceof Llama2cTokenizer);
  assert.deepEqual(l2c.encode("Lily.", { bos: true }), [1, 340, 431]); // tail of the README reference
  const dir = await Deno.makeTempDir();
  try {
    const json = trainBpeTokenizerJson("one two two three three three", { vocabSize: 270, minFrequency: 1 });
    await Deno.writeTextFile(`${dir}/tokenizer.json`, json);
    const hf = await loadTokenizer(`${dir}/tokenizer.json`);
    assert.ok(hf instanceof HfTokenizer);
    assert.equal(hf.decode(hf.encode("three two")), "three two");
    assert.ok((await loadTokenizer(dir)) instanceof HfTokenizer);
    await Deno.mkdir(`${dir}/bin`);
    await Deno.copyFile(TOK, `${dir}/bin/tokenizer.bin`);
    assert.ok((await loadTokenizer(`${dir}/bin`)) instanceof Llama2cTokenizer);
    await Deno.mkdir(`${dir}/empty`);
    await assert.rejects(loadTokenizer(`${dir}/empty`), /has no tokenizer\.json or tokenizer\.bin/);
    await Deno.writeTextFile(`${dir}/vocab.txt`, "x");
    await assert.rejects(loadTokenizer(`${dir}/vocab.txt`), /unknown file type/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(loadTokenizer("/nonexistent/tok.bin"), /tokenizer not found: \/nonexistent\/tok\.bin/);
});
