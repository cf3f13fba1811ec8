/**
 * Dense float64 matrices as arrays of rows, for tests that check a method's linear algebra by hand
 * (independent of ml-matrix and tfjs).
 * @module
 */

/** A matrix as its rows. */
export type Rows = number[][];

/** The [rows, cols] matrix of row-major `data`. */
export const rowsOf = (data: ArrayLike<number>, rows: number, cols: number): Rows =>
  Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => data[i * cols + j]));

/** a b. */
export const mul = (a: Rows, b: Rows): Rows =>
  a.map((r) => b[0].map((_, j) => r.reduce((s, x, k) => s + x * b[k][j], 0)));

/** a^T. */
export const tr = (a: Rows): Rows => a[0].map((_, j) => a.map((r) => r[j]));

/** a - b. */
export const sub = (a: Rows, b: Rows): Rows => a.map((r, i) => r.map((x, j) => x - b[i][j]));

/** s a. */
export const scaleRows = (a: Rows, s: number): Rows => a.map((r) => r.map((x) => x * s));

/** max |a_ij - b_ij|. */
export const maxDiff = (a: Rows, b: Rows): number =>
  Math.max(...a.flatMap((r, i) => r.map((x, j) => Math.abs(x - b[i][j]))));

/** ||a||_F^2. */
export const fro2 = (a: Rows): number => a.flat().reduce((s, x) => s + x * x, 0);
