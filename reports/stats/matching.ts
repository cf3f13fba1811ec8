/**
 * Matched comparisons: group results by one factor with every other factor held fixed.
 * @module
 */

/** A result row: factor levels plus one numeric metric. */
export type Row = Readonly<Record<string, string | number | boolean>>;

/** Result of {@link matchByFactor}. */
export interface Matched {
  /** Levels of the factor, numeric order when all are numbers, else first-seen order. */
  levels: Array<string | number | boolean>;
  /** The held-fixed configurations kept (present at every level), as "k=v,k=v" keys, sorted. */
  configs: string[];
  /** `groups[l][c]` = metric at level `levels[l]` and configuration `configs[c]`. */
  groups: number[][];
  /** Number of configurations dropped because some level was missing. */
  dropped: number;
  /** For exactly two levels: the paired vectors `a` (levels[0]) and `b` (levels[1]). */
  pairs?: { a: number[]; b: number[] };
}

/**
 * Group `rows` by the levels of `factor`, holding all other columns (except `metric`) fixed.
 * A configuration is the tuple of the other columns' values; only configurations observed at
 * every level are kept, so `groups[l][c]` across l compare like with like (a test of "rank"
 * then compares runs that differ only in rank). Throws on rows with different columns, a
 * non-numeric metric, or two rows with the same configuration and level.
 */
export function matchByFactor(rows: readonly Row[], factor: string, metric = "value"): Matched {
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new Error("matchByFactor needs a non-empty array of rows");
  }
  const columns = Object.keys(rows[0]).sort();
  if (!columns.includes(factor)) throw new Error(`matchByFactor: rows have no factor column "${factor}"`);
  if (!columns.includes(metric)) throw new Error(`matchByFactor: rows have no metric column "${metric}"`);
  const others = columns.filter((c) => c !== factor && c !== metric);
  const byLevel = new Map<string | number | boolean, Map<string, number>>();
  rows.forEach((row, i) => {
    const cols = Object.keys(row).sort();
    if (cols.join("\u0000") !== columns.join("\u0000")) {
      throw new Error(`matchByFactor: row ${i} has columns [${cols}], expected [${columns}]`);
    }
    const v = row[metric];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`matchByFactor: row ${i} has a non-finite metric "${metric}": ${v}`);
    }
    // JSON-quoted values keep "8" and 8 distinct in the key.
    const key = others.map((c) => `${c}=${JSON.stringify(row[c])}`).join(",");
    const level = row[factor];
    if (!byLevel.has(level)) byLevel.set(level, new Map());
    const m = byLevel.get(level)!;
    if (m.has(key)) {
      throw new Error(`matchByFactor: two rows for ${factor}=${level} at ${key || "(no other factors)"}`);
    }
    m.set(key, v);
  });
  let levels = [...byLevel.keys()];
  if (levels.every((l) => typeof l === "number")) levels = (levels as number[]).sort((a, b) => a - b);
  const maps = levels.map((l) => byLevel.get(l)!);
  const allKeys = new Set(maps.flatMap((m) => [...m.keys()]));
  const configs = [...allKeys].filter((k) => maps.every((m) => m.has(k))).sort();
  const groups = maps.map((m) => configs.map((k) => m.get(k)!));
  const out: Matched = { levels, configs, groups, dropped: allKeys.size - configs.length };
  if (levels.length === 2) out.pairs = { a: groups[0], b: groups[1] };
  return out;
}
