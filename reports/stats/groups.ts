/**
 * Input checks for k-sample tests.
 * @module
 */
import { checkSample } from "./describe.ts";

/** Throw unless `groups` holds at least two samples of finite numbers, each of at least `minEach` values. */
export function checkGroups(groups: readonly (readonly number[])[], test: string, minEach = 1): void {
  if (!Array.isArray(groups) || groups.length < 2) {
    throw new Error(`${test} needs at least 2 groups, got ${Array.isArray(groups) ? groups.length : groups}`);
  }
  groups.forEach((g, i) => checkSample(g, `${test} group ${i}`, minEach));
}
