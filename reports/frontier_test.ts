import assert from "node:assert/strict";
import { paretoFrontier } from "./frontier.ts";

Deno.test("paretoFrontier keeps non-dominated points, cheapest first", () => {
  const pts = [
    { cost: 10, quality: 0.8 },
    { cost: 5, quality: 0.7 },
    { cost: 7, quality: 0.6 }, // dominated by cost 5
    { cost: 12, quality: 0.9 },
    { cost: 12, quality: 0.85 }, // same cost, worse
    { cost: 3, quality: NaN }, // ignored
  ];
  assert.deepEqual(paretoFrontier(pts, "higher"), [1, 0, 3]);
});

Deno.test("paretoFrontier handles lower-is-better quality (perplexity)", () => {
  const pts = [{ cost: 1, quality: 20 }, { cost: 2, quality: 25 }, { cost: 3, quality: 15 }];
  assert.deepEqual(paretoFrontier(pts, "lower"), [0, 2]);
  assert.deepEqual(paretoFrontier(pts, "higher"), [0, 1]);
});
