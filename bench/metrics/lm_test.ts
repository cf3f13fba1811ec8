import assert from "node:assert/strict";
import { Rng } from "../../models/util/rng.ts";
import {
  bitsPerByte,
  bytePerplexity,
  makeDisjointWindow,
  rollingTokenWindows,
  tokenPerplexity,
  utf8Length,
  wordCount,
  wordPerplexity,
} from "./lm.ts";

function close(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `expected ${expected}, got ${actual}`,
  );
}

Deno.test("perplexity closed forms: a uniform model over V symbols has perplexity V", () => {
  // 12 tokens each with probability 1/50: NLL = 12 ln 50.
  close(tokenPerplexity(12 * Math.log(50), 12), 50);
  // Uniform over 256 byte values: 8 bits per byte, byte perplexity 256.
  close(bitsPerByte(100 * 8 * Math.LN2, 100), 8);
  close(bytePerplexity(100 * 8 * Math.LN2, 100), 256);
  // Identity: byte perplexity = 2^bits_per_byte.
  close(bytePerplexity(7.3, 11), 2 ** bitsPerByte(7.3, 11));
  assert.equal(tokenPerplexity(0, 3), 1);
});

Deno.test("UTF-8 byte counts (what lm-eval divides by)", () => {
  assert.equal(utf8Length("hello"), 5);
  assert.equal(utf8Length("héllo"), 6); // é = C3 A9
  assert.equal(utf8Length("€"), 3);
  assert.equal(utf8Length("😀"), 4);
});

Deno.test("bad totals throw", () => {
  assert.throws(() => tokenPerplexity(1, 0), /positive integer/);
  assert.throws(() => bitsPerByte(-1, 3), /NLL/);
  assert.throws(() => bytePerplexity(NaN, 3), /NLL/);
});

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const pairs = (w: ReturnType<typeof rollingTokenWindows<number>>) => w.map((x) => [x.input, x.target]);

// Gold windows from lm-evaluation-harness tests/test_utils.py (test_get_rolling_token_windows_v1,
// _v2, _v6, _empty): 34 tokens, max_seq_len 10, context_len 1 predict 10 + 10 + 10 + 4 tokens.
Deno.test("rolling windows: lm-eval test v1 (34 tokens, L=10, c=1)", () => {
  const w = rollingTokenWindows(range(34), -100, 10, 1);
  assert.deepEqual(pairs(w), [
    [[-100, 0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [[9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]],
    [[19, 20, 21, 22, 23, 24, 25, 26, 27, 28], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]],
    [[23, 24, 25, 26, 27, 28, 29, 30, 31, 32], [30, 31, 32, 33]],
  ]);
  assert.deepEqual(w.map((x) => x.scoreFrom), [0, 0, 0, 6]);
});

Deno.test("rolling windows: lm-eval test v2 (34 tokens, L=10, c=8)", () => {
  const gold = [[[-100, 0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]];
  for (let s = 2; s <= 23; s += 3) gold.push([range(10).map((i) => s + i), [s + 8, s + 9, s + 10]]);
  assert.deepEqual(gold[1], [[2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [10, 11, 12]]); // as printed in the test
  assert.deepEqual(gold.at(-1), [[23, 24, 25, 26, 27, 28, 29, 30, 31, 32], [31, 32, 33]]);
  assert.deepEqual(pairs(rollingTokenWindows(range(34), -100, 10, 8)), gold);
});

Deno.test("rolling windows: lm-eval test v6 (9 tokens, L=2, c=1) and empty input", () => {
  assert.deepEqual(pairs(rollingTokenWindows(range(9), -100, 2, 1)), [
    [[-100, 0], [0, 1]],
    [[1, 2], [2, 3]],
    [[3, 4], [4, 5]],
    [[5, 6], [6, 7]],
    [[6, 7], [8]],
  ]);
  assert.deepEqual(rollingTokenWindows([], -100, 2, 1), []);
});

Deno.test("rolling windows: lm-eval docstring example (tokens 0..8, L=3, c=2)", () => {
  assert.deepEqual(pairs(rollingTokenWindows(range(9), -1, 3, 2)), [
    [[-1, 0, 1], [0, 1, 2]],
    [[1, 2, 3], [3, 4]],
    [[3, 4, 5], [5, 6]],
    [[5, 6, 7], [7, 8]],
  ]);
});

Deno.test("rolling windows: every token predicted once, with its true predecessor as input", () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 200; trial++) {
    const n = rng.int(40), L = 1 + rng.int(12), c = 1 + rng.int(L);
    const toks = range(n);
    const w = rollingTokenWindows(toks, -1, L, c);
    assert.deepEqual(w.flatMap((x) => x.target), toks);
    for (const [k, x] of w.entries()) {
      assert.ok(x.input.length <= L);
      // The logit at input position scoreFrom + i predicts target[i]: its input is target[i] - 1.
      x.target.forEach((t, i) => assert.equal(x.input[x.scoreFrom + i], t - 1));
      if (k > 0) assert.ok(x.scoreFrom + 1 >= c, "at least c tokens of context after window 1");
    }
  }
});

Deno.test("make_disjoint_window: lm-eval test_make_disjoint_window cases", () => {
  assert.deepEqual(makeDisjointWindow([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]), [[1], [2, 3, 4, 5, 6]]);
  assert.deepEqual(makeDisjointWindow([1, 2, 3, 4, 5], [4, 5, 6]), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(makeDisjointWindow([1, 2, 3, 4, 5], [6]), [[1, 2, 3, 4, 5], [6]]);
  assert.throws(() => makeDisjointWindow([1], [1, 2]), /target length/);
  assert.throws(() => rollingTokenWindows([1], 0, 3, 4), /contextLen/);
});

Deno.test("word perplexity: exp(NLL / words) with lm-eval's re.split(r'\\s+') word count", () => {
  // Python: len(re.split(r"\s+", s)) for these strings is 3, 4, 1, 2, 3.
  assert.equal(wordCount("a b\t\n c"), 3);
  assert.equal(wordCount(" a b "), 4);
  assert.equal(wordCount(""), 1);
  assert.equal(wordCount("naïve café"), 2);
  assert.equal(wordCount("x\u00a0y z"), 3); // \s includes no-break space in both languages
  close(wordPerplexity(4 * Math.log(2), 4), 2);
  assert.throws(() => wordPerplexity(1, 0), /word count must be a positive integer/);
});
