import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { initBackend } from "../models/backend.ts";
import { DEFAULT_MODEL_DIR, loadModel } from "../models/load.ts";
import { scoreText } from "../bench/tasks/lm_score.ts";
import { checkText } from "../datasets/pretrain_corpus.ts";

const README = fileURLToPath(new URL("../models/default/README.md", import.meta.url));

Deno.test("embedded default model: held-out loss of the check text equals the value in its README", async () => {
  const readme = await Deno.readTextFile(README);
  const m = /Held-out check: (\d+) test glosses joined by newlines: mean loss ([\d.]+) nats over (\d+) tokens/
    .exec(readme);
  assert.ok(m, "README lacks the held-out check line");
  await initBackend("wasm");
  const { model, tokenizer } = await loadModel(DEFAULT_MODEL_DIR);
  const { nll, tokens } = await scoreText(model, tokenizer, checkText(), 16);
  assert.equal(tokens, Number(m[3]));
  assert.ok(Math.abs(nll / tokens - Number(m[2])) < 1e-4, `loss ${nll / tokens} vs README ${m[2]}`);
  model.dispose();
});

Deno.test("embedded default model: far below the unigram baseline, within the size budget", async () => {
  const meta = JSON.parse(
    await Deno.readTextFile(fileURLToPath(new URL("../models/default/pretrain.json", import.meta.url))),
  );
  for (const r of Object.values(meta.heldOut) as { perplexity: number; unigramPerplexity: number }[]) {
    assert.ok(r.perplexity < 0.5 * r.unigramPerplexity, `${r.perplexity} vs unigram ${r.unigramPerplexity}`);
  }
  let bytes = 0;
  for (const e of Deno.readDirSync(DEFAULT_MODEL_DIR)) {
    bytes += Deno.statSync(`${DEFAULT_MODEL_DIR}/${e.name}`).size;
  }
  assert.ok(bytes <= 10 * 1024 * 1024, `${bytes} bytes`);
});
