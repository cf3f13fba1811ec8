/**
 * Answers to the hypotheses a sweep file declares (bench/sweep_plan.ts, README.md "Sweep files"):
 * each is "supported", "contradicted" or "inconclusive", judged by the paired differences and
 * intervals the rest of the report uses (reports/stats/verdict.ts), so an answer never disagrees
 * with the interval printed beside it.
 *
 * Runs are paired by the sweep's own level names: a run of level A meets the run of level B that
 * has the same level of every other sweep factor and the same seed. A factor one compared level
 * never has (the rank of `frozen`) is left out of the pairing, and the other level's runs that
 * then share a cell (lora at ranks 4 and 16) are averaged, as the factor comparisons do.
 * Comparisons of one hypothesis form its family: Bonferroni over them (k = the comparisons it
 * plans), each hypothesis being a question of its own.
 *
 * - better / worse (A against B): supported when the (1 - a) CI of A - B excludes 0 on the
 *   claimed side, contradicted when it excludes 0 on the other side, else inconclusive (a TOST
 *   equivalence then says how small any difference is; it does not contradict a direction).
 * - equivalent / no effect (within ±m): one interval, the (1 - 2a/k) CI of the difference (TOST's):
 *   supported when every pair's lies inside (-m, m); contradicted when some pair's lies wholly
 *   beyond ±m (the difference is shown to exceed the margin: the mirror one-sided tests); else
 *   inconclusive. A non-significant test never supports "no effect".
 * - increases / decreases (levels in rising order): each step up, judged by its (1 - a/k) CI:
 *   supported when every step moves the metric the claimed way, contradicted when some step moves
 *   it the other way, else inconclusive. The claim is about the metric's value (perplexity
 *   "decreases"), not about quality.
 * @module
 */
import type { Hypothesis } from "../bench/sweep_plan.ts";
import type { DesignAnova, DesignEffect } from "./analysis.ts";
import { type Study, valueOf } from "./data.ts";
import { formatP, type Interval, judgeDifference, type Judgement, signed } from "./stats/mod.ts";
import { InputError } from "../models/util/args.ts";

/** The answer to one hypothesis. */
export type Answer = "supported" | "contradicted" | "inconclusive";

/** One paired comparison behind an answer: `a` minus `b`, in the metric's display unit. */
export interface HypothesisComparison {
  a: string;
  b: string;
  /** Matched pairs (cells of the other factors and seed). */
  n: number;
  judgement: Judgement;
}

/** A hypothesis, its answer and the numbers behind it. */
export interface HypothesisAnswer {
  hypothesis: Hypothesis;
  /** The claim in words: "quant none and nf4+dq are equivalent within ±1.0 accuracy points". */
  statement: string;
  answer: Answer;
  /** Why, with the numbers: intervals, p-values, matched pairs, the factorial model's effect. */
  reason: string;
  comparisons: HypothesisComparison[];
  /** The margin used, in the metric's display unit (difference unit). */
  margin: number;
  /** The factor's main effect in the design model, when the model has the factor. */
  effect?: DesignEffect;
}

/** Options of {@link answerHypotheses}. */
export interface HypothesisOptions {
  /** The report's margin (display unit), used where a hypothesis gives none. */
  margin: number;
  /** Family-wise significance level (default 0.05). */
  alpha?: number;
  /** The design model of the study, for the factor's F test beside the answer. */
  design?: DesignAnova | null;
}

/** The percentage of a CI level without trailing zeros: 0.975 -> "97.5%". */
const pct = (level: number) => `${Number((level * 100).toFixed(2))}%`;

/**
 * Paired differences (a - b) x scale between two levels of a sweep factor, matched on every other
 * sweep factor's level and the seed; see the module doc for factors one level lacks.
 */
export function pairedLevelDiffs(study: Study, factor: string, a: string, b: string): number[] {
  const byRun = study.sweepLevels;
  if (!byRun) return [];
  const lv = (runId: string) => byRun.get(runId)!;
  const runs = study.ok.filter((r) => byRun.has(r.runId) && [a, b].includes(lv(r.runId)[factor]));
  const others = [...new Set(runs.flatMap((r) => Object.keys(lv(r.runId))))].filter((k) => k !== factor)
    .sort();
  const absent = others.filter((k) =>
    [a, b].some((l) => runs.filter((r) => lv(r.runId)[factor] === l).every((r) => lv(r.runId)[k] === "n/a"))
  );
  const kept = others.filter((k) => !absent.includes(k));
  const cells = new Map<string, { a: number[]; b: number[] }>();
  for (const r of runs) {
    const l = lv(r.runId);
    // The config's seed too: a sweep may list seeds under `fixed` rather than as a factor.
    const key = JSON.stringify([...kept.map((k) => l[k] ?? null), r.config.seed]);
    const cell = cells.get(key) ?? { a: [], b: [] };
    (l[factor] === a ? cell.a : cell.b).push(valueOf(r, study.metric)!);
    cells.set(key, cell);
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return [...cells.values()].filter((c) => c.a.length && c.b.length)
    .map((c) => (mean(c.a) - mean(c.b)) * study.metric.scale);
}

/** The claim in words. */
function statementOf(h: Hypothesis, study: Study, margin: string): string {
  const [a, b] = h.levels;
  const f = h.factor;
  switch (h.claim) {
    case "better":
    case "worse":
      return `${f} ${a} is ${h.claim} than ${b} (${study.metric.name}, ${study.metric.direction} is better)`;
    case "equivalent":
      return `${f} ${a} and ${b} are equivalent within ${margin}`;
    case "no effect":
      return `${f} has no effect (${h.levels.join(", ")} within ${margin} of each other)`;
    case "increases":
    case "decreases":
      return `${study.metric.name} ${h.claim} with ${f} (${h.levels.join(" → ")})`;
  }
}

/** Answer every hypothesis a study carries (none without a sweep file's hypotheses). */
export function answerHypotheses(study: Study, opts: HypothesisOptions): HypothesisAnswer[] {
  return (study.hypotheses ?? []).map((h) => answerHypothesis(study, h, opts));
}

/** Answer one hypothesis on a study; see the module doc for the rules. */
export function answerHypothesis(study: Study, h: Hypothesis, opts: HypothesisOptions): HypothesisAnswer {
  const u = study.metric;
  const alpha = opts.alpha ?? 0.05;
  if (h.margin !== undefined && u.scale === 100 && h.margin >= 1) {
    throw new InputError(
      `hypotheses[${h.index}] (${h.factor} ${h.claim}): margin ${h.margin} is in ${u.name}'s own unit ` +
        `(0.01 = 1 point), so ${h.margin} would be ${h.margin * 100} points; fix "margin" in the sweep file`,
    );
  }
  const margin = h.margin !== undefined ? h.margin * u.scale : opts.margin;
  const num = (x: number) => x.toFixed(u.digits);
  const m = `±${num(margin)} ${u.unit}`;
  const statement = statementOf(h, study, m);
  const main = opts.design?.factors.includes(h.factor)
    ? (opts.design.used === "parametric" ? opts.design.parametric : opts.design.art ?? [])
      .find((e) => e.factors.length === 1 && e.factors[0] === h.factor)
    : undefined;
  // df 0: the factor's levels coincide with another factor's (frozen is the only method at rank
  // n/a), so type II leaves it no main effect of its own to test.
  const effect = main && main.df > 0 ? main : undefined;
  const base = { hypothesis: h, statement, margin, ...(effect ? { effect } : {}) };
  if (!study.sweepLevels) {
    return {
      ...base,
      answer: "inconclusive",
      reason: `not tested: ${study.sweepNote ?? "the runs carry no sweep level names"}`,
      comparisons: [],
    };
  }
  // The planned comparisons: one pair, every pair, or each step up.
  const plan: [string, string][] = [];
  if (h.claim === "no effect") {
    for (let i = 0; i < h.levels.length; i++) {
      for (let j = i + 1; j < h.levels.length; j++) plan.push([h.levels[i], h.levels[j]]);
    }
  } else if (h.claim === "increases" || h.claim === "decreases") {
    for (let i = 1; i < h.levels.length; i++) plan.push([h.levels[i], h.levels[i - 1]]);
  } else plan.push([h.levels[0], h.levels[1]]);
  const k = plan.length;
  const comparisons = plan.map(([a, b]): HypothesisComparison => {
    const diffs = pairedLevelDiffs(study, h.factor, a, b);
    const judgement = judgeDifference({
      name: `${h.factor} ${a} vs ${b}`,
      a,
      b,
      diffs,
      // increases/decreases are about the metric's value, so its sign is read as "higher".
      direction: h.claim === "increases" || h.claim === "decreases" ? "higher" : u.direction,
      margin,
      alpha,
      comparisons: k,
      unit: u.unit,
      digits: u.digits,
    });
    return { a, b, n: diffs.length, judgement };
  });
  const ci = (i: Interval) => `${pct(i.level)} CI [${num(i.lo)}, ${num(i.hi)}]`;
  const adj = k > 1 ? `, Bonferroni over ${k}` : "";
  const stepwise = h.claim === "increases" || h.claim === "decreases";
  // A step reads "8 → 32" (from the lower level up); a pair reads "none − nf4+dq".
  const label = (c: HypothesisComparison) => stepwise ? `${c.b} → ${c.a}` : `${c.a} − ${c.b}`;
  const untestable = comparisons.filter((c) => c.judgement.kind === "not testable");
  const untested = untestable.length
    ? `; not testable (fewer than 2 matched pairs): ${untestable.map(label).join(", ")}`
    : "";
  // The t-test view of a comparison: difference, (1 - a/k) CI, p.
  const tView = (c: HypothesisComparison) =>
    `${label(c)} ${signed(c.judgement.diff, u.digits)} ${u.unit} (${
      ci(c.judgement.ci!)
    }, paired t over ${c.n} ` +
    `matched pairs, ${formatP(c.judgement.pAdjusted!)}${adj})`;
  // The equivalence view: difference, (1 - 2a/k) CI against the margin.
  const eqView = (c: HypothesisComparison) =>
    `${label(c)} ${signed(c.judgement.diff, u.digits)} ${u.unit} (${
      ci(c.judgement.equivalence!.ci)
    } over ${c.n} ` +
    `matched pairs, TOST ${formatP(c.judgement.equivalence!.pAdjusted)}${adj})`;
  const tested = comparisons.filter((c) => c.judgement.kind !== "not testable");
  let answer: Answer;
  let reason: string;
  if (tested.length === 0) {
    answer = "inconclusive";
    reason = `not testable: fewer than 2 matched pairs of runs (${
      comparisons.map((c) => `${label(c)}: ${c.n}`).join(", ")
    })`;
  } else if (h.claim === "better" || h.claim === "worse") {
    const [c] = comparisons;
    const j = c.judgement;
    const claimed = h.claim === "better" ? c.a : c.b;
    if (j.better === claimed) {
      answer = "supported";
      reason = `${tView(c)}: ${claimed} is better`;
    } else if (j.better !== null) {
      answer = "contradicted";
      reason = `${tView(c)}: ${j.better} is better`;
    } else {
      answer = "inconclusive";
      reason = `${tView(c)}: the interval includes 0, so neither is shown better` +
        (j.equivalence!.pAdjusted < alpha
          ? `; the two are equivalent within ${m} (${ci(j.equivalence!.ci)}), so any difference is smaller ` +
            `than the margin`
          : "");
    }
  } else if (h.claim === "equivalent" || h.claim === "no effect") {
    const inside = (c: HypothesisComparison) => c.judgement.equivalence!.pAdjusted < alpha;
    const beyond = (c: HypothesisComparison) => {
      const i = c.judgement.equivalence!.ci;
      return i.lo > margin || i.hi < -margin;
    };
    const out = tested.filter(beyond);
    const open = tested.filter((c) => !inside(c) && !beyond(c));
    if (out.length) {
      answer = "contradicted";
      reason = `the difference exceeds the margin ${m}: ${out.map(eqView).join("; ")}`;
    } else if (open.length === 0 && untestable.length === 0) {
      answer = "supported";
      const detected = tested.filter((c) => c.judgement.kind === "better" || c.judgement.kind === "worse");
      reason =
        `${tested.length > 1 ? "every interval" : "the interval"} lies inside ${m}: ${
          tested.map(eqView).join("; ")
        }` +
        (detected.length
          ? `; a difference smaller than the margin is detected (${detected.map(tView).join("; ")})`
          : effect && effect.p < alpha
          // The model's F test can find an effect the pairs do not; the intervals bound its size.
          ? "; the factorial model below detects an effect, which the intervals put within the margin"
          : "");
    } else {
      answer = "inconclusive";
      reason = open.length
        ? `not shown within ${m}: ${open.map(eqView).join("; ")}` +
          (tested.length > open.length
            ? `; within it: ${tested.filter(inside).map(eqView).join("; ")}`
            : "") +
          (open.some((c) => c.judgement.kind !== "not shown equivalent")
            ? " (a difference is detected, but it may lie within the margin)"
            : "")
        : `within ${m} where tested: ${tested.map(eqView).join("; ")}`;
    }
  } else {
    const up = h.claim === "increases";
    const moved = (c: HypothesisComparison, rising: boolean) =>
      c.judgement.kind !== "not testable" && c.judgement.ci !== undefined &&
      (rising ? c.judgement.ci.lo > 0 : c.judgement.ci.hi < 0);
    const against = tested.filter((c) => moved(c, !up));
    const along = tested.filter((c) => moved(c, up));
    const flat = tested.filter((c) => !moved(c, true) && !moved(c, false));
    const verb = up ? "rises" : "falls";
    if (against.length) {
      answer = "contradicted";
      reason = `${u.name} ${up ? "falls" : "rises"} at ${against.map(tView).join("; ")}`;
    } else if (flat.length === 0 && untestable.length === 0) {
      answer = "supported";
      reason = `${u.name} ${verb} at every step: ${along.map(tView).join("; ")}`;
    } else {
      answer = "inconclusive";
      reason = (flat.length ? `no ${up ? "rise" : "fall"} shown at ${flat.map(tView).join("; ")}` : "") +
        (along.length ? `${flat.length ? "; " : ""}${u.name} ${verb} at ${along.map(tView).join("; ")}` : "");
    }
  }
  if (tested.length) reason += untested;
  if (effect && opts.design) {
    reason +=
      `. Factorial model over the design: ${h.factor} F(${effect.df}, ${opts.design.errorDf}) = ${
        effect.f.toFixed(2)
      }, ${formatP(effect.p)}, partial η² = ${effect.partialEtaSquared.toFixed(2)}` +
      (opts.design.used === "parametric" ? "" : " (aligned rank transform)");
  } else if (main && tested.length) {
    reason += `. The factorial model has no main-effect test of ${h.factor}: its levels coincide with ` +
      `another factor's (aliased), so the paired comparison above is the test`;
  }
  return { ...base, answer, reason, comparisons };
}
