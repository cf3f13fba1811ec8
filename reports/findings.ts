/**
 * The findings of a study in plain language, for the top of the report: the answers to the
 * hypotheses its sweep file declares (reports/hypotheses.ts), trivial baselines and
 * collapsed runs, every configuration against the baselines (frozen, full), and each factor's
 * comparisons, each with the numbers behind it (reports/stats/verdict.ts says how they are judged).
 * @module
 */
import type { StudyAnalysis } from "./analysis.ts";
import type { Study } from "./data.ts";
import { COLLAPSE_SHARE } from "./trivial.ts";
import type { VerdictKind } from "./stats/mod.ts";
import { baselineFindings } from "./baselines.ts";
import { forgettingFindings } from "./forgetting.ts";

/** One study's findings: a heading, the answers to the sweep file's hypotheses, and its lines. */
export interface StudyFindings {
  title: string;
  /** The declared hypotheses, in file order, each answered (reports/hypotheses.ts). */
  hypotheses: {
    /** 1-based position in the sweep file's list. */
    n: number;
    /** The author's words for it, when given. */
    name?: string;
    statement: string;
    answer: string;
    reason: string;
  }[];
  lines: string[];
}

const fixed = (x: number, d = 3) => x.toFixed(d);

/** Count verdict kinds as "3 better, 1 worse, 2 equivalent within ±1.0, 4 not shown equivalent". */
function tally(kinds: readonly VerdictKind[], margin: string): string {
  const order: [VerdictKind, string][] = [
    ["better", "better"],
    ["worse", "worse"],
    ["equivalent", `equivalent within ${margin}`],
    ["not shown equivalent", "not shown equivalent"],
    ["not testable", "not testable"],
  ];
  return order.map(([k, text]) => [kinds.filter((x) => x === k).length, text] as const)
    .filter(([n]) => n > 0).map(([n, text]) => `${n} ${text}`).join(", ");
}

/** Findings of one study, in reading order. */
export function studyFindings(study: Study, a: StudyAnalysis): StudyFindings {
  const u = study.metric;
  const margin = `±${a.margin.toFixed(u.digits)} ${u.unit}`;
  const lines: string[] = [
    `Analysed metric ${u.name} (${u.direction} is better); differences in ${u.unit}, judged by paired t ` +
    `intervals (Bonferroni within each family) and TOST equivalence with margin ${margin}.`,
  ];
  const t = a.trivial;
  if (t) {
    const s = t.scores;
    lines.push(
      `Trivial baselines on ${s.items} test items: always answering the majority class ('${s.majorityLabel}') ` +
        `scores accuracy ${fixed(s.majorityAccuracy)} and macro-F1 ${
          fixed(s.majorityMacroF1)
        }; chance over ` +
        `${s.classes} classes is ${fixed(s.chanceAccuracy)}.` +
        (t.atOrBelowMajority.length
          ? ` ${t.atOrBelowMajority.length} of ${study.groups.length} configurations score at or below the ` +
            `majority class.`
          : ""),
    );
    if (t.collapsed.length) {
      lines.push(
        `${t.collapsed.length} of ${study.ok.length} runs put ${COLLAPSE_SHARE * 100}% or more of their ` +
          `predictions in one class (flagged in the table).`,
      );
    }
  }
  const rr = a.randomRanking;
  if (rr) {
    const shown = Object.entries(rr.scores).map(([m, v]) => `${m} ${(v * 100).toFixed(2)}%`).join(", ");
    lines.push(
      `Trivial baseline: a random ranking of the ${rr.corpusSize}-document corpus is expected to score ${shown} ` +
        `(closed form${rr.assumedOneRelevant ? ", assuming one relevant document per query" : ""}).`,
    );
  }
  lines.push(...baselineFindings(study, a.recorded, a.coverage));
  for (const b of a.baselines) {
    if (b.rows.length === 0) continue;
    lines.push(
      `Against ${b.baseline} (${b.rows.length} configurations): ` +
        `${tally(b.rows.map((r) => r.judgement.kind), `±${a.margin.toFixed(u.digits)}`)}.`,
    );
  }
  if (a.design?.ok) {
    const d = a.design.value;
    const table = d.used === "parametric" ? d.parametric : d.art!;
    const shown = table.filter((e) => e.df > 0);
    const sig = shown.filter((e) => e.p < 0.05);
    const pv = (p: number) => (p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`);
    lines.push(
      `Factorial ANOVA over all ${d.n} runs (type II${
        d.used === "parametric" ? "" : ", aligned rank transform"
      }): ` +
        (sig.length
          ? sig.map((e) =>
            `${e.name} F(${e.df}, ${d.errorDf}) = ${e.f.toFixed(2)}, ${pv(e.p)}, partial η² = ${
              e.partialEtaSquared.toFixed(2)
            }`
          ).join("; ")
          : "no effect or interaction at p < 0.05") +
        (sig.length && sig.length < shown.length
          ? `; not significant: ${shown.filter((e) => e.p >= 0.05).map((e) => e.name).join(", ")}`
          : "") +
        ".",
    );
  }
  lines.push(...forgettingFindings(study, a.forgetting));
  for (const f of a.factors) {
    for (const p of f.pairs) lines.push(p.verdict);
  }
  if (a.factors.length === 0 && a.baselines.length === 0) lines.push("Nothing to compare: no factor varies.");
  const hypotheses = a.hypotheses.map((h) => ({
    n: h.hypothesis.index + 1,
    ...(h.hypothesis.name ? { name: h.hypothesis.name } : {}),
    statement: h.statement,
    answer: h.answer,
    reason: h.reason,
  }));
  return { title: `${study.task} on ${study.dataset}`, hypotheses, lines };
}
