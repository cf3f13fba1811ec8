/**
 * Classification metrics with scikit-learn's definitions (sklearn.metrics, zero_division=0).
 *
 * Labels are all strings or all numbers. The label set defaults to every label seen in y_true or
 * y_pred, sorted (numbers numerically, strings by code unit), as sklearn's `unique_labels`.
 * @module
 */

/** A class label. One call uses one kind (all numbers or all strings). */
export type Label = string | number;

function checkPair(yTrue: readonly Label[], yPred: readonly Label[]): void {
  if (yTrue.length !== yPred.length) {
    throw new Error(
      `y_true has ${yTrue.length} labels but y_pred has ${yPred.length}; pass one prediction per example`,
    );
  }
  if (yTrue.length === 0) throw new Error("y_true and y_pred are empty; pass at least one example");
}

/** Sorted union of the labels in y_true and y_pred (sklearn `unique_labels`). */
export function labelSet(yTrue: readonly Label[], yPred: readonly Label[]): Label[] {
  const all = [...new Set([...yTrue, ...yPred])];
  const kinds = new Set(all.map((l) => typeof l));
  if (kinds.size > 1) throw new Error("labels mix numbers and strings; use one type for all labels");
  return kinds.has("number")
    ? (all as number[]).sort((a, b) => a - b)
    : (all as string[]).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Accuracy = (1/n) * sum_i [y_true_i == y_pred_i]. */
export function accuracy(yTrue: readonly Label[], yPred: readonly Label[]): number {
  checkPair(yTrue, yPred);
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) ok++;
  return ok / yTrue.length;
}

/** A confusion matrix: `matrix[i][j]` = number of examples of true label `labels[i]` predicted as `labels[j]`. */
export interface ConfusionMatrix {
  labels: Label[];
  matrix: number[][];
}

/**
 * Confusion matrix C with C[i][j] = |{n : y_true_n = labels[i], y_pred_n = labels[j]}| (rows true,
 * columns predicted, as sklearn `confusion_matrix`). Examples whose true or predicted label is not
 * in an explicit `labels` list are left out, as sklearn does.
 */
export function confusionMatrix(
  yTrue: readonly Label[],
  yPred: readonly Label[],
  labels?: readonly Label[],
): ConfusionMatrix {
  checkPair(yTrue, yPred);
  const ls = labels ? [...labels] : labelSet(yTrue, yPred);
  if (new Set(ls).size !== ls.length) throw new Error("labels list has duplicates; list each label once");
  const index = new Map(ls.map((l, i) => [l, i]));
  const matrix = ls.map(() => ls.map(() => 0));
  for (let n = 0; n < yTrue.length; n++) {
    const i = index.get(yTrue[n]), j = index.get(yPred[n]);
    if (i !== undefined && j !== undefined) matrix[i][j]++;
  }
  return { labels: ls, matrix };
}

/** Precision, recall, F1 and support of one class. */
export interface ClassScores {
  label: Label;
  precision: number;
  recall: number;
  f1: number;
  /** Number of examples whose true label is this class. */
  support: number;
}

/**
 * Per-class scores: precision = TP / (TP + FP), recall = TP / (TP + FN),
 * F1 = 2PR / (P + R); each is 0 where its denominator is 0 (sklearn zero_division=0).
 */
export function perClassScores(
  yTrue: readonly Label[],
  yPred: readonly Label[],
  labels?: readonly Label[],
): ClassScores[] {
  checkPair(yTrue, yPred);
  const ls = labels ? [...labels] : labelSet(yTrue, yPred);
  return ls.map((label) => {
    let tp = 0, fp = 0, fn = 0;
    for (let n = 0; n < yTrue.length; n++) {
      const t = yTrue[n] === label, p = yPred[n] === label;
      if (t && p) tp++;
      else if (p) fp++;
      else if (t) fn++;
    }
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support: tp + fn };
  });
}

/**
 * Macro F1 = (1/|L|) * sum over labels l in L of F1_l, with L the label set (default: every label
 * in y_true or y_pred) and F1_l = 0 where P_l + R_l = 0 (sklearn `f1_score(average="macro",
 * zero_division=0)`).
 */
export function macroF1(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): number {
  const scores = perClassScores(yTrue, yPred, labels);
  if (scores.length === 0) throw new Error("labels list is empty; pass at least one label");
  return scores.reduce((s, c) => s + c.f1, 0) / scores.length;
}
