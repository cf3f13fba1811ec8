/**
 * Sweep files and their plans: parse a sweep file (format in README.md, "Sweep files"), expand its
 * factors into the cartesian product minus `exclude`, drop options a method does not take (entries
 * that become the same run collapse into one), and validate every entry through `buildRunConfigs`
 * before anything runs (the first invalid entry is an input error naming it, exit code 2). A sweep
 * file may also declare hypotheses about its factors (`hypotheses`), checked here against the
 * factors and levels it declares; the report answers them (reports/hypotheses.ts).
 * @module
 */
import { InputError, UsageError } from "../models/util/args.ts";
import { BENCH_SPEC } from "./bench_options.ts";
import { buildRunConfigs, methodOptionsFromFlags } from "./config.ts";
import { type RunConfig, runIdOf, runName } from "./record.ts";
import { getMethod, METHODS } from "../methods/registry.ts";
import { NAMED_OPTIONS } from "../methods/common.ts";

/** A flag value as written in a sweep file. */
export type FlagValue = string | number | boolean | Record<string, unknown> | string[];

/** One factor level: its name and the flags it sets. */
export interface Level {
  name: string;
  flags: Record<string, FlagValue>;
}

/** A parsed, checked sweep file. */
export interface SweepSpec {
  description: string;
  fixed: Record<string, FlagValue>;
  factors: { name: string; levels: Level[] }[];
  exclude: Record<string, string[]>[];
  /** Hypotheses the study declares, checked against its factors and levels. */
  hypotheses: Hypothesis[];
}

/** What a hypothesis claims about a factor (README.md, "Sweep files"). */
export const CLAIMS = ["better", "worse", "equivalent", "no effect", "increases", "decreases"] as const;
/** One claim of {@link CLAIMS}. */
export type Claim = typeof CLAIMS[number];

/**
 * The `method` factor's levels with a `"*"` level replaced, in place, by every registered method
 * that no other level names (as its value or its `method` flag), in registry order: a study of the
 * whole catalogue lists only the methods it runs with non-default options, and a newly registered
 * method joins it without an edit.
 */
function withAllMethods(levels: unknown[]): unknown[] {
  if (!levels.includes("*")) return levels;
  const named = new Set(levels.map((lv) => (isObject(lv) ? lv.method : lv)));
  const rest = [...METHODS.keys()].filter((m) => !named.has(m));
  return levels.flatMap((lv) => (lv === "*" ? rest : [lv]));
}

/** A hypothesis a sweep file declares, with its levels resolved to the factor's level names. */
export interface Hypothesis {
  /** Position in the file's `hypotheses` list (0-based), for messages. */
  index: number;
  /** The sweep factor it is about (never `seed`: seeds are the replicates). */
  factor: string;
  claim: Claim;
  /**
   * The levels compared, as the sweep names them: the two of `compare` for better / worse /
   * equivalent (the claim is about the first against the second); for no effect every level (or
   * `compare`); for increases / decreases the levels in rising order (`compare` as written, else
   * every level by its leading number).
   */
  levels: string[];
  /** Equivalence margin in the metric's own unit (accuracy 0.01 = 1 point); equivalent / no effect only. */
  margin?: number;
  /** The author's words for it ("QLoRA loses nothing"), shown beside the answer. */
  name?: string;
}

/** One run of the plan. */
export interface PlannedRun {
  /** Position in the plan (after exclusions and collapsing): shards select by it. */
  index: number;
  runId: string;
  /** `runName` of the config. */
  name: string;
  /** Factor -> level name (`n/a` where the method does not take the factor's option). */
  levels: Record<string, string>;
  config: RunConfig;
}

/** The expanded plan and what was dropped on the way. */
export interface Plan {
  runs: PlannedRun[];
  /** Entries of the full product before exclusions. */
  productSize: number;
  excluded: number;
  /** Runs that became identical to an earlier one after dropping options a method does not take. */
  collapsed: number;
  /** Human notices (dropped options, exclusions that matched nothing). */
  notices: string[];
}

/** Flags that belong to the sweep command, not to a run. */
const NOT_IN_SWEEP = new Set([
  "out",
  "help",
  "list-methods",
  "list-datasets",
  "repeat-check",
  "save-adapter",
]);

const isPlain = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean";

function checkFlag(where: string, flag: string, value: unknown): FlagValue {
  const spec = (BENCH_SPEC as Record<string, { type: string; multiple?: boolean }>)[flag];
  if (!spec) throw new UsageError(`${where}: '${flag}' is not a bench flag (see deno task bench --help)`);
  if (NOT_IN_SWEEP.has(flag)) {
    throw new UsageError(
      `${where}: '${flag}' is not allowed in a sweep file (give --out to the sweep command)`,
    );
  }
  if (isKeyValueFlag(flag)) {
    const ok = (Array.isArray(value) && value.every((p) => typeof p === "string")) ||
      (value !== null && typeof value === "object" && !Array.isArray(value) &&
        Object.values(value).every(isPlain));
    if (!ok) {
      throw new UsageError(`${where}: '${flag}' must be an object {KEY: VALUE} or a list of "KEY=VALUE"`);
    }
    return value as FlagValue;
  }
  if (spec.type === "boolean") {
    if (typeof value !== "boolean") throw new UsageError(`${where}: '${flag}' must be true or false`);
    return value;
  }
  if (typeof value !== "string" && typeof value !== "number") {
    throw new UsageError(`${where}: '${flag}' must be a string or number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Parse and check a sweep file's JSON (shape, flag names, level names); `source` names it in errors. */
export function parseSweep(json: unknown, source = "sweep file"): SweepSpec {
  if (!isObject(json)) throw new InputError(`${source}: expected a JSON object with "factors"`);
  for (const key of Object.keys(json)) {
    if (!["description", "fixed", "factors", "exclude", "hypotheses"].includes(key)) {
      throw new InputError(
        `${source}: unknown key '${key}' (use description, fixed, factors, exclude, hypotheses)`,
      );
    }
  }
  const fixedIn = json.fixed ?? {};
  if (!isObject(fixedIn)) throw new InputError(`${source}: "fixed" must be an object of flag -> value`);
  const fixed: Record<string, FlagValue> = {};
  for (const [k, v] of Object.entries(fixedIn)) fixed[k] = checkFlag(`${source}: fixed`, k, v);
  if (!isObject(json.factors) || Object.keys(json.factors).length === 0) {
    throw new InputError(`${source}: "factors" must be a non-empty object of name -> list of levels`);
  }
  const factors: SweepSpec["factors"] = [];
  const setBy = new Map<string, string>(); // flag -> factor that sets it
  for (const [name, levelsIn] of Object.entries(json.factors)) {
    const where = `${source}: factor '${name}'`;
    if (!Array.isArray(levelsIn) || levelsIn.length === 0) {
      throw new InputError(`${where}: expected a non-empty list of levels`);
    }
    const levels: Level[] = (name === "method" ? withAllMethods(levelsIn) : levelsIn).map((lv, i) => {
      if (isPlain(lv)) return { name: String(lv), flags: { [name]: checkFlag(where, name, lv) } };
      if (!isObject(lv)) throw new InputError(`${where}: level ${i} must be a value or an object of flags`);
      const flags: Record<string, FlagValue> = {};
      for (const [k, v] of Object.entries(lv)) {
        if (k !== "name") flags[k] = checkFlag(`${where} level ${i}`, k, v);
      }
      if (Object.keys(flags).length === 0) throw new InputError(`${where}: level ${i} sets no flag`);
      if (lv.name !== undefined && typeof lv.name !== "string") {
        throw new InputError(`${where}: level ${i}: "name" must be a string`);
      }
      const label = (lv.name as string | undefined) ??
        Object.entries(flags).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(
          ",",
        );
      return { name: label, flags };
    });
    const names = levels.map((l) => l.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) {
      throw new InputError(`${where}: two levels are named '${dup}'; give each a unique "name"`);
    }
    for (const flag of new Set(levels.flatMap((l) => Object.keys(l.flags)))) {
      const other = setBy.get(flag);
      if (other) {
        throw new InputError(`${source}: factors '${other}' and '${name}' both set '${flag}'; merge them`);
      }
      setBy.set(flag, name);
    }
    factors.push({ name, levels });
  }
  const excludeIn = json.exclude ?? [];
  if (!Array.isArray(excludeIn)) throw new InputError(`${source}: "exclude" must be a list of objects`);
  const factorNames = new Set(factors.map((f) => f.name));
  const exclude = excludeIn.map((rule, i) => {
    if (!isObject(rule) || Object.keys(rule).length === 0) {
      throw new InputError(`${source}: exclude[${i}] must be a non-empty object`);
    }
    const out: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(rule)) {
      if (!factorNames.has(k) && !(k in BENCH_SPEC)) {
        throw new InputError(`${source}: exclude[${i}]: '${k}' is neither a factor nor a bench flag`);
      }
      const values = Array.isArray(v) ? v : [v];
      if (!values.every(isPlain)) {
        throw new InputError(`${source}: exclude[${i}]: '${k}' must be a value or list`);
      }
      out[k] = values.map(String);
    }
    return out;
  });
  const description = typeof json.description === "string" ? json.description : "";
  const hypotheses = parseHypotheses(json.hypotheses ?? [], factors, source);
  return { description, fixed, factors, exclude, hypotheses };
}

const HYPOTHESIS_KEYS = ["factor", "claim", "compare", "margin", "name"];
/** The number a level name starts with ("32", "64/class", "1e-4"), or NaN. */
const leadingNumber = (s: string) => {
  const m = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(s);
  return m ? Number(m[0]) : NaN;
};

/**
 * Check a sweep file's `hypotheses` against its factors: every entry names a factor other than
 * seed, a claim of {@link CLAIMS}, levels the factor declares, and a margin only where a claim
 * of equivalence uses one. The first bad entry is one InputError line naming it.
 */
export function parseHypotheses(
  json: unknown,
  factors: SweepSpec["factors"],
  source = "sweep file",
): Hypothesis[] {
  if (!Array.isArray(json)) throw new InputError(`${source}: "hypotheses" must be a list of objects`);
  return json.map((h, index): Hypothesis => {
    const where = `${source}: hypotheses[${index}]`;
    if (!isObject(h)) throw new InputError(`${where} must be an object with "factor" and "claim"`);
    const unknown = Object.keys(h).find((k) => !HYPOTHESIS_KEYS.includes(k));
    if (unknown !== undefined) {
      throw new InputError(`${where}: unknown key '${unknown}' (use ${HYPOTHESIS_KEYS.join(", ")})`);
    }
    const names = factors.map((f) => f.name).filter((n) => n !== "seed");
    if (typeof h.factor !== "string") {
      throw new InputError(`${where}: "factor" must be one of ${names.join(", ")}`);
    }
    const factor = factors.find((f) => f.name === h.factor);
    if (h.factor === "seed") {
      throw new InputError(
        `${where}: seeds are the replicates, not a factor to test; name one of ${names.join(", ")}`,
      );
    }
    if (!factor) {
      throw new InputError(`${where}: '${h.factor}' is not a factor of this sweep (${names.join(", ")})`);
    }
    const claim = h.claim as Claim;
    if (!CLAIMS.includes(claim)) {
      throw new InputError(`${where}: "claim" must be one of ${CLAIMS.map((c) => `"${c}"`).join(", ")}`);
    }
    const what = `${where} (${factor.name} ${claim})`;
    if (factor.levels.length < 2) {
      throw new InputError(`${what}: factor '${factor.name}' has one level; nothing to compare`);
    }
    const declared = factor.levels.map((l) => l.name);
    let compare: string[] | undefined;
    if (h.compare !== undefined) {
      if (
        !Array.isArray(h.compare) || !h.compare.every((v) => typeof v === "string" || typeof v === "number")
      ) {
        throw new InputError(`${what}: "compare" must be a list of level names of '${factor.name}'`);
      }
      compare = h.compare.map(String);
      const missing = compare.find((l) => !declared.includes(l));
      if (missing !== undefined) {
        throw new InputError(
          `${what}: '${missing}' is not a level of '${factor.name}' (${declared.join(", ")})`,
        );
      }
      const dup = compare.find((l, i) => compare!.indexOf(l) !== i);
      if (dup !== undefined) throw new InputError(`${what}: "compare" names '${dup}' twice`);
    }
    const pairwise = claim === "better" || claim === "worse" || claim === "equivalent";
    if (pairwise && compare?.length !== 2) {
      throw new InputError(
        `${what}: needs "compare": [A, B], two levels of '${factor.name}' (${declared.join(", ")})`,
      );
    }
    if (compare !== undefined && compare.length < 2) {
      throw new InputError(`${what}: "compare" must name two or more levels`);
    }
    let levels = compare ?? declared;
    if ((claim === "increases" || claim === "decreases") && compare === undefined) {
      const bad = declared.find((l) => !Number.isFinite(leadingNumber(l)));
      if (bad !== undefined) {
        throw new InputError(
          `${what}: level '${bad}' is not a number, so the levels have no order; list them in rising order in "compare"`,
        );
      }
      // Numeric order; levels with equal numbers keep file order (sort is stable).
      levels = [...declared].sort((a, b) => leadingNumber(a) - leadingNumber(b));
    }
    const out: Hypothesis = { index, factor: factor.name, claim, levels };
    if (h.margin !== undefined) {
      if (claim !== "equivalent" && claim !== "no effect") {
        throw new InputError(`${what}: "margin" applies to "equivalent" and "no effect" claims only`);
      }
      if (typeof h.margin !== "number" || !Number.isFinite(h.margin) || h.margin <= 0) {
        throw new InputError(
          `${what}: "margin" must be a positive number in the metric's own unit (accuracy 0.01 = 1 point)`,
        );
      }
      out.margin = h.margin;
    }
    if (h.name !== undefined) {
      if (typeof h.name !== "string" || h.name.trim() === "") {
        throw new InputError(`${what}: "name" must be a non-empty string`);
      }
      out.name = h.name;
    }
    return out;
  });
}

/** Parse `--set KEY=VALUE` overrides of fixed options (numbers stay strings: flags are strings). */
export function parseOverrides(pairs: string[]): Record<string, FlagValue> {
  const out: Record<string, FlagValue> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(`--set ${pair}: expected FLAG=VALUE, e.g. --set model=path/to/model.bin`);
    }
    const flag = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const isBool = (BENCH_SPEC as Record<string, { type: string }>)[flag]?.type === "boolean";
    out[flag] = checkFlag(
      "--set",
      flag,
      isBool && (raw === "true" || raw === "false") ? raw === "true" : raw,
    );
  }
  return out;
}

/** The repeatable KEY=VALUE flags, which a sweep file may give as objects. */
const KEY_VALUE_FLAGS = ["opt", "data-opt"] as const;

const isKeyValueFlag = (flag: string): flag is typeof KEY_VALUE_FLAGS[number] =>
  (KEY_VALUE_FLAGS as readonly string[]).includes(flag);

/** The [KEY, VALUE] pairs of an `opt` / `data-opt` value (object or list of "KEY=VALUE"). */
function pairsOf(v: FlagValue): [string, string][] {
  return Array.isArray(v)
    ? v.map((p) => [p.slice(0, Math.max(0, p.indexOf("="))), p.slice(p.indexOf("=") + 1)])
    : Object.entries(v as Record<string, unknown>).map(([a, b]) => [a, String(b)]);
}

/**
 * Flags as parsed by `parseCli(…, BENCH_SPEC)`: defaults, then fixed, then levels. A later layer
 * overrides a method option whichever spelling either layer uses (`rank` or `opt.rank`); one layer
 * giving both is left for buildRunConfigs to report when they differ.
 */
function toCliValues(layers: Record<string, FlagValue>[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(BENCH_SPEC)) if ("default" in o) values[k] = o.default;
  const maps = { opt: new Map<string, string>(), "data-opt": new Map<string, string>() };
  for (const layer of layers) {
    const optKeys = new Set(layer.opt === undefined ? [] : pairsOf(layer.opt).map(([k]) => k));
    for (const key of NAMED_OPTIONS) {
      if (optKeys.has(key) && !(key in layer)) delete values[key];
      if (key in layer && !optKeys.has(key)) maps.opt.delete(key);
    }
    for (const [k, v] of Object.entries(layer)) {
      if (isKeyValueFlag(k)) { for (const [a, b] of pairsOf(v)) maps[k].set(a, b); }
      else values[k] = typeof v === "boolean" ? v : String(v);
    }
  }
  for (const flag of KEY_VALUE_FLAGS) {
    if (maps[flag].size > 0) values[flag] = [...maps[flag]].map(([a, b]) => `${a}=${b}`);
  }
  return values;
}

/**
 * Remove the method options the entry's method does not take (its schema reports them as
 * unrecognized keys); returns the dropped option names. Other option errors stay for
 * buildRunConfigs to report.
 */
function dropForeignOptions(values: Record<string, unknown>): string[] {
  let method;
  try {
    method = getMethod(String(values.method));
  } catch {
    return []; // buildRunConfigs names the unknown method
  }
  let options: Record<string, unknown>;
  try {
    options = methodOptionsFromFlags(values);
  } catch {
    return [];
  }
  const result = method.schema.safeParse(options);
  if (result.success) return [];
  const foreign = result.error.issues.flatMap((i: { code: string; keys?: string[] }) =>
    i.code === "unrecognized_keys" ? i.keys ?? [] : []
  );
  for (const key of foreign) {
    if (key === "rank" || key === "alpha" || key === "targets") delete values[key];
    else values.opt = (values.opt as string[]).filter((p) => p.slice(0, p.indexOf("=")) !== key);
  }
  if (Array.isArray(values.opt) && values.opt.length === 0) delete values.opt;
  return foreign;
}

const describeEntry = (levels: Record<string, string>) =>
  Object.entries(levels).map(([k, v]) => `${k}=${v}`).join(" ");

/**
 * Expand a sweep into its plan: cartesian product, exclusions, dropping options a method does not
 * take (collapsing duplicates), then validation of every entry. Throws UsageError / InputError
 * naming the first invalid entry.
 */
export async function expandPlan(spec: SweepSpec, overrides: Record<string, FlagValue> = {}): Promise<Plan> {
  const fixed = { ...spec.fixed, ...overrides };
  const productSize = spec.factors.reduce((n, f) => n * f.levels.length, 1);
  const factorNames = new Set(spec.factors.map((f) => f.name));
  const ruleHits = spec.exclude.map(() => 0);
  const dropped = new Map<string, { options: Set<string>; entries: number }>(); // by method
  const runs: PlannedRun[] = [];
  // run id -> the first entry with it, and whether options were dropped from that entry
  const seen = new Map<string, { where: string; dropped: boolean }>();
  let excluded = 0;
  let collapsed = 0;
  const pick = new Array(spec.factors.length).fill(0);
  for (let e = 0; e < productSize; e++) {
    // Mixed-radix counter: the last factor varies fastest.
    let rest = e;
    for (let f = spec.factors.length - 1; f >= 0; f--) {
      pick[f] = rest % spec.factors[f].levels.length;
      rest = Math.floor(rest / spec.factors[f].levels.length);
    }
    const chosen = spec.factors.map((f, i) => f.levels[pick[i]]);
    const levels = Object.fromEntries(spec.factors.map((f, i) => [f.name, chosen[i].name]));
    const values = toCliValues([fixed, ...chosen.map((l) => l.flags)]);
    const matches = (rule: Record<string, string[]>) =>
      Object.entries(rule).every(([k, vs]) =>
        factorNames.has(k)
          ? vs.includes(levels[k])
          : values[k] !== undefined && vs.includes(String(values[k]))
      );
    const hit = spec.exclude.findIndex(matches);
    if (hit >= 0) {
      ruleHits[hit]++;
      excluded++;
      continue;
    }
    const foreign = dropForeignOptions(values);
    if (foreign.length > 0) {
      const d = dropped.get(String(values.method)) ?? { options: new Set(), entries: 0 };
      foreign.forEach((k) => d.options.add(k));
      d.entries++;
      dropped.set(String(values.method), d);
    }
    if (foreign.length > 0) {
      // A factor whose every option this method ignores is shown as n/a for the entry.
      spec.factors.forEach((f, i) => {
        const keys = Object.entries(chosen[i].flags).flatMap(([k, v]) =>
          k !== "opt" ? [k] : Array.isArray(v) ? v.map((p) => p.slice(0, p.indexOf("="))) : Object.keys(v)
        );
        if (keys.every((k) => foreign.includes(k))) levels[f.name] = "n/a";
      });
    }
    const where = `plan entry ${e + 1} (${describeEntry(levels)})`;
    let configs: RunConfig[];
    try {
      configs = buildRunConfigs(values);
    } catch (err) {
      const msg = `${where}: ${(err as Error).message}`;
      throw err instanceof InputError ? new InputError(msg) : new UsageError(msg);
    }
    for (const config of configs) {
      const runId = await runIdOf(config);
      const first = seen.get(runId);
      if (first && !first.dropped && foreign.length === 0) {
        throw new UsageError(`${where} is the same run as ${first.where}; drop one of the two levels`);
      }
      if (first) {
        collapsed++;
        continue;
      }
      seen.set(runId, { where, dropped: foreign.length > 0 });
      runs.push({ index: runs.length, runId, name: runName(config), levels, config });
    }
  }
  const backends = new Set(runs.map((r) => r.config.backend));
  if (backends.size > 1) {
    throw new UsageError(`the plan mixes backends (${[...backends].join(", ")}); fix one backend per sweep`);
  }
  const notices: string[] = [];
  if (dropped.size > 0) {
    const list = [...dropped].map(([m, d]) => `${m}: ${[...d.options].join(", ")} (${d.entries} entries)`)
      .join("; ");
    notices.push(
      `options not taken by the method were dropped: ${list}; ${collapsed} duplicate run(s) collapsed`,
    );
  }
  spec.exclude.forEach((rule, i) => {
    if (ruleHits[i] === 0) notices.push(`exclude[${i}] ${JSON.stringify(rule)} matched no entry (a typo?)`);
  });
  return { runs, productSize, excluded, collapsed, notices };
}

/** Parse `--shard i/n` (1-based i). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard ${text}: expected i/n with 1 <= i <= n, e.g. --shard 3/8`);
  }
  return { index, count };
}

/**
 * The runs of shard `index` of `count` (1-based): plan positions p with p mod count == index - 1.
 * Round-robin rather than contiguous blocks, so each shard gets a similar mix of methods, ranks
 * and train sizes (blocks would give one shard all the slow rank-32, 128-per-class runs). Shards
 * are disjoint and together cover the plan, given the same sweep file and code on every machine.
 */
export function shardRuns<T extends { index: number }>(runs: T[], index: number, count: number): T[] {
  return runs.filter((r) => r.index % count === index - 1);
}
