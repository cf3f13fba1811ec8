import assert from "node:assert/strict";
import { UnigramModel } from "./unigram.ts";

Deno.test("add-one unigram: hand-computed probabilities and perplexity; bad vocabulary size throws", () => {
  // Train "a a b" over V = 4 ids (a=0, b=1, c=2, d=3): N = 3, so P(a) = 3/7, P(b) = 2/7, P(c) = 1/7.
  const m = new UnigramModel(4);
  m.fit([0, 0, 1]);
  assert.equal(m.total, 3);
  assert.ok(Math.abs(m.nllOf(0) - Math.log(7 / 3)) < 1e-15);
  assert.ok(Math.abs(m.nllOf(2) - Math.log(7)) < 1e-15);
  // Test "a c": perplexity = (P(a) P(c))^(-1/2) = sqrt(49/3).
  assert.ok(Math.abs(Math.exp(m.nll([0, 2]) / 2) - Math.sqrt(49 / 3)) < 1e-12);
  // The smoothed distribution sums to 1 over the vocabulary.
  assert.ok(Math.abs([0, 1, 2, 3].reduce((s, t) => s + Math.exp(-m.nllOf(t)), 0) - 1) < 1e-15);
  // Untrained: uniform, perplexity V.
  assert.ok(Math.abs(Math.exp(new UnigramModel(50).nll([1, 2, 3]) / 3) - 50) < 1e-9);
  assert.throws(() => new UnigramModel(0), /vocabulary size must be a positive integer/);
});
