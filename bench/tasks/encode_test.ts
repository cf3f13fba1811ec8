import assert from "node:assert/strict";
import { lengthBatches } from "./encode.ts";

Deno.test("lengthBatches: every index once, at most `size` per batch, shortest first, ties in index order", () => {
  const seqs = [[1, 2, 3], [1], [1, 2], [1], [1, 2, 3, 4], [1, 2]].map((s) => s);
  assert.deepEqual(lengthBatches(seqs, 4), [[1, 3, 2, 5], [0, 4]]);
  assert.deepEqual(lengthBatches(seqs, 1).flat(), [1, 3, 2, 5, 0, 4]);
  assert.deepEqual(lengthBatches([], 8), []);
});
