import assert from "node:assert/strict";
import { accuracy, confusionMatrix, labelSet, macroF1, perClassScores } from "./classification.ts";

function close(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);
}

Deno.test("sklearn f1_score docs example: macro F1 = 0.2666...", () => {
  const yTrue = [0, 1, 2, 0, 1, 2], yPred = [0, 2, 1, 0, 0, 1];
  close(macroF1(yTrue, yPred), 0.26666666666666666);
  // By hand: class 0 has TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8; classes 1 and 2 have TP 0.
  const s = perClassScores(yTrue, yPred);
  assert.deepEqual(s.map((c) => c.label), [0, 1, 2]);
  close(s[0].precision, 2 / 3);
  close(s[0].recall, 1);
  close(s[0].f1, 0.8);
  assert.deepEqual(s.map((c) => c.support), [2, 2, 2]);
  assert.deepEqual([s[1].f1, s[2].f1], [0, 0]);
});

Deno.test("sklearn precision_recall_fscore_support docs example with string labels", () => {
  const yTrue = ["cat", "dog", "pig", "cat", "dog", "pig"];
  const yPred = ["cat", "pig", "dog", "cat", "cat", "dog"];
  const s = perClassScores(yTrue, yPred);
  // Macro averages published in the sklearn docs: P 0.22..., R 0.33..., F 0.26...
  close(s.reduce((a, c) => a + c.precision, 0) / 3, 2 / 9);
  close(s.reduce((a, c) => a + c.recall, 0) / 3, 1 / 3);
  close(macroF1(yTrue, yPred), 0.26666666666666666);
});

Deno.test("accuracy: sklearn accuracy_score docs example = 0.5", () => {
  assert.equal(accuracy([0, 1, 2, 3], [0, 2, 1, 3]), 0.5);
});

Deno.test("confusion matrix: sklearn confusion_matrix docs examples (rows true, cols predicted)", () => {
  assert.deepEqual(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]).matrix, [[2, 0, 0], [0, 0, 1], [
    1,
    0,
    2,
  ]]);
  const c = confusionMatrix(
    ["cat", "ant", "cat", "cat", "ant", "bird"],
    ["ant", "ant", "cat", "cat", "ant", "cat"],
    ["ant", "bird", "cat"],
  );
  assert.deepEqual(c.matrix, [[2, 0, 0], [0, 0, 1], [1, 0, 2]]);
});

Deno.test("zero_division=0: a label never predicted, and one never true, score 0 not NaN", () => {
  // Label 9 only appears in y_pred: recall denominator 0 -> 0; precision 0/1 = 0.
  const s = perClassScores([1, 1], [1, 9]);
  assert.deepEqual(s.map((c) => [c.label, c.precision, c.recall, c.f1]), [[1, 1, 0.5, 2 / 3], [9, 0, 0, 0]]);
  // An explicit label absent from the data adds a 0 to the macro mean: (1 + 0) / 2.
  close(macroF1([1, 1], [1, 1], [1, 2]), 0.5);
});

Deno.test("label set is sorted numerically; bad input throws", () => {
  assert.deepEqual(labelSet([10, 2], [1]), [1, 2, 10]);
  assert.throws(() => accuracy([1], [1, 2]), /one prediction per example/);
  assert.throws(() => labelSet([1], ["1"]), /mix numbers and strings/);
  assert.throws(() => confusionMatrix([1], [1], [1, 1]), /duplicates/);
});
