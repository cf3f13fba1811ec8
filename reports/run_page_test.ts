import assert from "node:assert/strict";
import { renderReport, runPageName } from "./site.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";
import { Rng } from "../models/util/rng.ts";

Deno.test("run page: per-class scores and the confusion matrix as tables (heat-shaded), never a template dump", async () => {
  const record = await fixtureRecord(fixtureConfig({ task: "classify" }), new Rng(3));
  const files = await renderReport([record], { resamples: 20, permutations: 20 });
  const page = files.find((f) => f.path === `runs/${runPageName(record.runId)}`)?.text ?? "";
  assert.ok(page.length > 0, "run page rendered");
  assert.ok(!page.includes('"name":"json"'), "no Handlebars options object printed");
  const section = page.slice(page.indexOf("Per-class results"), page.indexOf("Per-item summary"));
  assert.match(
    section,
    /<h3>perClass<\/h3>\s*<table class="detail"><thead><tr><th><\/th><th>precision<\/th><th>recall<\/th>/,
  );
  assert.match(section, /<tr><th>sports<\/th><td class="num">0\.\d{3}<\/td>/);
  assert.match(
    section,
    /<h3>confusion<\/h3>\s*<table class="detail"><thead><tr><th><\/th><th>world<\/th><th>sports<\/th>/,
  );
  // Row "world" is [8, 1, 1, 0]: the diagonal cell holds 0.8 of its row.
  assert.match(section, /<tr><th>world<\/th><td class="num heat" style="--share: 0.800">8<\/td>/);
  assert.ok(!section.includes("<pre>"), "nothing fell back to JSON");
});

Deno.test("run page: the task's trivial baselines and tokenizer coverage as tables", async () => {
  const record = await fixtureRecord(fixtureConfig({ task: "retrieve" }), new Rng(4));
  record.trivial = [{ name: "bm25", metrics: { mrr: 0.283 } }, { name: "random", metrics: { mrr: 0.026 } }];
  record.tokenizerCoverage = {
    documents: {
      texts: 2,
      tokens: 10,
      words: 4,
      chars: 40,
      unknownTokens: 0,
      byteFallbackTokens: 0,
      unknownShare: 0,
      byteFallbackShare: 0,
      tokensPerWord: 2.5,
      tokensPerChar: 0.25,
      truncated: 1,
      truncatedShare: 0.5,
      maxLength: 48,
    },
  };
  const files = await renderReport([record], { resamples: 20, permutations: 20 });
  const page = files.find((f) => f.path === `runs/${runPageName(record.runId)}`)!.text;
  assert.match(
    page,
    /<h3>trivial baselines<\/h3>\s*<table class="detail"><thead><tr><th><\/th><th>mrr<\/th>/,
  );
  assert.match(page, /<tr><th>bm25<\/th><td class="num">0\.283<\/td>/);
  assert.match(page, /<h3>tokenizer coverage<\/h3>[\s\S]*<tr><th>documents<\/th>/);
});
