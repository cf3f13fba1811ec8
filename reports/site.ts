/**
 * Builds the report: a static site (index.html, runs/<id>.html, inline SVG charts, inline
 * vanilla JS for sorting and filtering) and REPORT.md with the same tables and charts/*.svg.
 * Every data string goes through Handlebars' escaping ({{ }}) or the helpers in escape.ts, and
 * every rendered file is then checked for markup that could run script (script-like elements,
 * event-handler attributes, script URLs) beyond what its template itself holds; escaped text is
 * text, not markup, so a dataset called `x onerror=y` renders.
 * @module
 */
import Handlebars from "handlebars";
import { join } from "node:path";
import type { RunRecord } from "../bench/record.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import {
  type AnalysisOptions,
  analyzeStudy,
  type Attempt,
  type DesignEffect,
  type StudyAnalysis,
} from "./analysis.ts";
import { type Chart, ChartRenderer, runCharts, studyCharts } from "./charts.ts";
import {
  buildStudies,
  FACTORS,
  factorsOf,
  perItemFields,
  perItemScores,
  slug,
  type Study,
  summarize,
  type Summary,
  type SweepLevels,
  valueDigits,
} from "./data.ts";
import { escapeMarkdown, jsonForScript } from "./escape.ts";
import { collapsed } from "./trivial.ts";
import { studyFindings } from "./findings.ts";
import { showForgetting } from "./forgetting.ts";
import { quantLayerRows } from "./quant.ts";
import { baselineTitle, showValue } from "./baselines.ts";
import { metricDecimals, metricHeader, summaryCsv, summaryRows, summaryTex } from "./summary.ts";

/** Options of {@link buildReport}. */
export interface ReportOptions extends AnalysisOptions {
  title?: string;
  /** Metric to analyse instead of each task's primary one (see buildStudies). */
  metric?: string;
  /** The sweep file's factor and level names by run id (see buildStudies). */
  sweep?: SweepLevels;
}

/** A rendered file: path relative to the output folder, and its text. */
export interface ReportFile {
  path: string;
  text: string;
}

const TEMPLATES = new URL("./templates/", import.meta.url);
const MiB = 1024 * 1024;

/** Where markup can run script: what it is and the offset of its tag. */
export interface ActiveContent {
  /** E.g. `<script>`, `onload= on <svg>`, `href=javascript: on <a>`. */
  what: string;
  at: number;
}

/** Elements that run or embed script or other documents. */
const ACTIVE_ELEMENTS = new Set([
  "script",
  "foreignobject",
  "iframe",
  "frame",
  "frameset",
  "object",
  "embed",
  "applet",
  "handler",
  "listener",
]);
/**
 * Elements whose content is skipped up to their end tag: script source (the element itself is
 * already active). Everything else, style and title included, is scanned as markup, as XML does.
 */
const RAW_TEXT_ELEMENTS = new Set(["script"]);
/** Attributes whose value a browser may load or navigate to, or animate into another attribute. */
const URL_ATTRIBUTES = new Set([
  "href",
  "xlink:href",
  "src",
  "action",
  "formaction",
  "data",
  "srcdoc",
  "poster",
  "background",
  "to",
  "from",
  "values",
  "by",
  "style",
]);
const SCRIPT_URL =
  /^(javascript|vbscript|livescript):|^data:(text\/html|image\/svg|application\/(x?html|xml))|url\(\s*['"]?\s*(javascript|vbscript):|expression\(/;
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  colon: ":",
  tab: "\t",
  newline: "\n",
  lpar: "(",
  rpar: ")",
};

/** An attribute value as a browser sees it: entities decoded, lower case, no whitespace or controls. */
function attributeValue(raw: string): string {
  return raw
    .replace(/&#x([0-9a-f]+);?|&#(\d+);?|&([a-z]+);/gi, (m, hex, dec, name) => {
      if (hex || dec) {
        const code = parseInt(hex ?? dec, hex ? 16 : 10);
        return code <= 0x10ffff ? String.fromCodePoint(code) : "";
      }
      return NAMED_ENTITIES[name.toLowerCase()] ?? m;
    })
    .toLowerCase()
    // deno-lint-ignore no-control-regex -- browsers drop these inside a URL scheme
    .replace(/[\u0000-\u0020]/g, "");
}

/** The tag at `lt` (which starts `<name`): element name, attributes and the index after `>`. */
function readTag(markup: string, lt: number): { name: string; attrs: [string, string][]; end: number } {
  const nameMatch = /^[^\s/>]+/.exec(markup.slice(lt + 1, lt + 200))!;
  const attrs: [string, string][] = [];
  const attr = /[\s/]*(?:(>)|([^\s/>][^\s/>=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?)/y;
  attr.lastIndex = lt + 1 + nameMatch[0].length;
  for (;;) {
    const m = attr.exec(markup);
    if (!m || m[1]) {
      return { name: nameMatch[0].toLowerCase(), attrs, end: m ? attr.lastIndex : markup.length };
    }
    attrs.push([m[2].toLowerCase(), m[3] ?? m[4] ?? m[5] ?? ""]);
  }
}

/** What in one tag can run script. */
function activeInTag(name: string, attrs: [string, string][]): string[] {
  const found = ACTIVE_ELEMENTS.has(name) ? [`<${name}>`] : [];
  for (const [attr, raw] of attrs) {
    if (/^on/.test(attr)) found.push(`${attr}= on <${name}>`);
    else if (URL_ATTRIBUTES.has(attr) && SCRIPT_URL.test(attributeValue(raw))) {
      found.push(`${attr}=${attributeValue(raw).slice(0, 20)} on <${name}>`);
    }
  }
  return found;
}

/** Index after the markup construct at `lt` that is not an element's start tag, or -1 when it is one. */
function skipNonElement(markup: string, lt: number): number {
  const close = (end: string) => {
    const i = markup.indexOf(end, lt);
    return i === -1 ? markup.length : i + end.length;
  };
  if (markup.startsWith("<!--", lt)) return close("-->");
  if (markup.startsWith("<![CDATA[", lt)) return close("]]>");
  const next = markup[lt + 1];
  if (next === "!" || next === "?" || next === "/") return close(">");
  return /[A-Za-z]/.test(next ?? "") ? -1 : lt + 1; // a lone "<" in text
}

/**
 * Every place in HTML or SVG markup that could run script: script-like elements, event-handler
 * attributes (`on...=`), and `javascript:` / `vbscript:` / HTML `data:` URLs in attributes that
 * load, navigate or animate (after decoding entities and dropping whitespace, as browsers do).
 * Only tags count: escaped text (`&lt;img onerror=x&gt;`), text content, comments and the source
 * inside script elements are not markup.
 */
export function findActiveContent(markup: string): ActiveContent[] {
  const found: ActiveContent[] = [];
  let i = 0;
  for (let lt = markup.indexOf("<"); lt !== -1; lt = markup.indexOf("<", i)) {
    i = skipNonElement(markup, lt);
    if (i !== -1) continue;
    const tag = readTag(markup, lt);
    for (const what of activeInTag(tag.name, tag.attrs)) found.push({ what, at: lt });
    i = tag.end;
    if (RAW_TEXT_ELEMENTS.has(tag.name)) {
      const endTag = new RegExp(`</${tag.name}[\\s/>]`, "gi");
      endTag.lastIndex = i;
      i = endTag.exec(markup)?.index ?? markup.length;
    }
  }
  return found;
}

/**
 * Throw unless the rendered file's active content is exactly what its template holds
 * (`expected`, e.g. the index's own two script elements): anything more came from data.
 */
export function assertNoActiveContent(file: ReportFile, expected: readonly string[] = []): void {
  const left = [...expected];
  for (const a of findActiveContent(file.text)) {
    const k = left.indexOf(a.what);
    if (k !== -1) {
      left.splice(k, 1);
      continue;
    }
    throw new Error(
      `report: ${file.path} would contain active content (${a.what} at offset ${a.at}); nothing was written. ` +
        "A record's text escaped into markup: report this bug, and look for markup in the records",
    );
  }
}

function loadTemplates() {
  const hb = Handlebars.create();
  const read = (name: string) => Deno.readTextFileSync(new URL(name, TEMPLATES));
  hb.registerPartial("style", read("style.css.hbs"));
  hb.registerPartial("script", read("table.js.hbs"));
  // Values that are already safe markup are produced here, never from data in templates.
  hb.registerHelper(
    "md",
    (v: unknown) => new hb.SafeString(escapeMarkdown(v === undefined || v === null ? "" : String(v))),
  );
  hb.registerHelper("json", (v: unknown) => new hb.SafeString(jsonForScript(v)));
  hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);
  hb.registerHelper("svg", (c: { svg: string }) => new hb.SafeString(c.svg));
  const opts = { strict: false, noEscape: false };
  const own = (name: string) => findActiveContent(read(name)).map((a) => a.what);
  return {
    index: hb.compile(read("index.hbs"), opts),
    run: hb.compile(read("run.hbs"), opts),
    // Markdown is not HTML: nothing is entity-escaped; every data string goes through `md`.
    markdown: hb.compile(read("report.md.hbs"), { ...opts, noEscape: true }),
    /** The active content each template holds itself (the index's script elements). */
    own: { index: own("index.hbs"), run: own("run.hbs"), markdown: own("report.md.hbs") },
  };
}

/** Number formatting: `digits` decimals, thousands grouped for large values, "–" for none. */
export function fmt(x: number | undefined | null, digits = 3): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1e4) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

/** A p-value for a table cell: "0.012" or "<0.001". */
function fmtP(p: number): string {
  return !Number.isFinite(p) ? "–" : p < 0.001 ? "<0.001" : p.toFixed(3);
}

/** A p-value in running text: "p = 0.012" or "p < 0.001" (never "p = <0.001"). */
export function pText(p: number): string {
  return !Number.isFinite(p) ? "p = –" : p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`;
}

function show<T>(a: Attempt<T>, f: (v: T) => string): string {
  return a.ok ? f(a.value) : `n/a (${a.reason})`;
}

/** Output file name of a run page: a slug of the id plus a hash, so odd ids stay distinct. */
export function runPageName(runId: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < runId.length; i++) h = Math.imul(h ^ runId.charCodeAt(i), 0x01000193);
  const s = slug(runId);
  return s === runId ? `${s}.html` : `${s}-${(h >>> 0).toString(16)}.html`;
}

interface Cell {
  text: string;
  sort: string | number;
}

const cell = (text: string, sort: string | number = text): Cell => ({ text, sort });

/** "ok", or a flag when runs put >= 90% of their predictions in one class ("2/3 runs: 95% 'world'"). */
function collapseStatus(runs: readonly RunRecord[]): string {
  const hits = runs.map((r) => collapsed(r)).filter((c) => c !== null);
  if (hits.length === 0) return "ok";
  const top = hits.reduce((a, b) => (b.share > a.share ? b : a));
  return `collapsed: ${hits.length}/${runs.length} runs predict one class (up to ${
    (top.share * 100).toFixed(0)
  }% '${top.label}')`;
}

/** Forgetting of a configuration: signed mean ± SD over seeds (nats per token), "–" when not recorded. */
function forgettingCell(f: Summary | undefined): Cell {
  if (!f) return cell("–", "");
  return cell(f.n > 1 ? `${showForgetting(f.mean)} ± ${f.sd.toFixed(4)}` : showForgetting(f.mean), f.mean);
}

function tableOf(study: Study, analysis: StudyAnalysis) {
  const sup = analysis.superscripts?.ok ? analysis.superscripts.value : null;
  const summary = summaryRows(study);
  const rows = study.groups.map((g, gi) => {
    const s = sup?.byConfig.get(g.key);
    return {
      failed: false,
      factors: FACTORS.map((f) =>
        cell(g.factors[f] === null ? "–" : String(g.factors[f]), g.factors[f] ?? "")
      ),
      seeds: cell(String(g.runs.length), g.runs.length),
      // Values in the unit their header names (% for proportions), as summary.csv and summary.tex.
      metrics: summary[gi].metrics.map((v, i) => {
        const d = metricDecimals(study.metricNames[i]);
        return cell(
          v ? (v.n > 1 ? `${fmt(v.mean, d)} ± ${fmt(v.sd, d)}` : fmt(v.mean, d)) : "–",
          v ? v.mean : "",
        );
      }),
      letter: s?.letter ?? "",
      beats: s?.beats.join("") ?? "",
      trainTime: cell(fmt(summary[gi].trainMinutes?.mean, 2), summary[gi].trainMinutes?.mean ?? ""),
      memory: cell(fmt(g.peakTrainBytes && g.peakTrainBytes.mean / MiB, 1), g.peakTrainBytes?.mean ?? ""),
      finalLoss: cell(fmt(summary[gi].finalLoss?.mean, 3), summary[gi].finalLoss?.mean ?? ""),
      forgetting: forgettingCell(summary[gi].forgetting),
      params: cell(
        g.trainableParams === undefined ? "–" : g.trainableParams.toLocaleString("en-US"),
        g.trainableParams ?? "",
      ),
      status: collapseStatus(g.runs),
      runs: g.runs.map((r) => ({ href: `runs/${runPageName(r.runId)}`, text: `seed ${r.config.seed}` })),
      error: "",
    };
  });
  const bad = [...study.failed, ...study.incomplete].map((r) => {
    const f = factorsOf(r.config);
    return {
      failed: true,
      factors: FACTORS.map((k) => cell(f[k] === null ? "–" : String(f[k]), f[k] ?? "")),
      seeds: cell("1", 1),
      metrics: [],
      letter: "",
      beats: "",
      trainTime: cell("–", ""),
      memory: cell("–", ""),
      finalLoss: cell("–", ""),
      forgetting: cell("–", ""),
      params: cell("–", ""),
      status: r.status === "failed" ? "failed" : `no ${study.metric.name}`,
      runs: [{ href: `runs/${runPageName(r.runId)}`, text: `seed ${r.config?.seed}` }],
      error: r.error ??
        (r.status === "failed" ? "failed (no error recorded)" : `no ${study.metric.name} in metrics`),
    };
  });
  return {
    id: `runs-${study.id}`,
    metricCols: study.metricNames.map((m, i) => ({ name: metricHeader(m), primary: i === 0 })),
    metricSpan: study.metricNames.length + 5, // metrics, time, memory, params, final loss, forgetting
    model: [...new Set(study.ok.map((r) => String(r.config.model)))].join(", "),
    hasLetters: sup !== null,
    rows: [...rows, ...bad],
  };
}

/** A CI level as a label: 0.95 -> "95%", 1 - 0.05/3 -> "98.33%". */
function ciLevel(level: number): string {
  return `${Number((level * 100).toFixed(2))}%`;
}

function statsView(study: Study, a: StudyAnalysis) {
  const u = study.metric;
  const t = a.trivial;
  return {
    margin: `±${a.margin.toFixed(u.digits)} ${u.unit}`,
    trivial: t
      ? {
        items: t.scores.items,
        classes: t.scores.classes,
        label: t.scores.majorityLabel,
        accuracy: fmt(t.scores.majorityAccuracy, 3),
        macroF1: fmt(t.scores.majorityMacroF1, 3),
        chance: fmt(t.scores.chanceAccuracy, 3),
        collapsed: t.collapsed.map((c) => ({
          name: c.name,
          label: c.label,
          share: `${(c.share * 100).toFixed(0)}%`,
        })),
      }
      : null,
    recorded: a.recorded.length
      ? {
        metric: u.name,
        rows: a.recorded.map((b) => ({
          name: baselineTitle(b.name),
          value: showValue(u.name, b.value),
          range: b.min === b.max ? "" : `${showValue(u.name, b.min)} to ${showValue(u.name, b.max)}`,
          runs: b.runs,
          notBetter: `${b.notBetter.length} of ${b.configs}`,
          note: b.note ?? "",
        })),
      }
      : null,
    coverage: a.coverage.length
      ? a.coverage.map((c) => ({
        split: c.split,
        runs: c.runs,
        fallback: `${(c.fallbackShare * 100).toFixed(1)}%`,
        unknown: `${(c.unknownShare * 100).toFixed(1)}%`,
        byte: `${(c.byteFallbackShare * 100).toFixed(1)}%`,
        perWord: c.tokensPerWord.toFixed(2),
        perChar: c.tokensPerChar.toFixed(2),
        truncated: c.truncatedShare === null
          ? "–"
          : `${(c.truncatedShare * 100).toFixed(1)}% (at ${c.maxLength})`,
        warn: c.warnings.length > 0,
      }))
      : null,
    baselines: a.baselines.map((b) => ({
      baseline: b.baseline,
      rows: b.rows.map((r) => ({
        config: r.config,
        n: r.n,
        diff: fmt(r.judgement.diff, u.digits + 1),
        ci: r.judgement.ci
          ? `${ciLevel(r.judgement.ci.level)} [${fmt(r.judgement.ci.lo, u.digits + 1)}, ${
            fmt(r.judgement.ci.hi, u.digits + 1)
          }]`
          : "–",
        p: r.judgement.pAdjusted === undefined ? "–" : fmtP(r.judgement.pAdjusted),
        tost: r.judgement.equivalence ? fmtP(r.judgement.equivalence.pAdjusted) : "–",
        kind: r.judgement.kind,
      })),
    })),
    seedSd: Number.isFinite(a.seedSd) ? `${fmt(a.seedSd, u.digits + 1)} ${u.unit}` : "n/a",
    notes: a.notes,
    factors: a.factors.map((f) => ({
      label: f.label,
      levels: f.levels.join(", "),
      matched: f.matched,
      dropped: f.dropped,
      omnibus: [
        {
          test: "Kruskal-Wallis H",
          text: show(f.kruskal, (v) => `H = ${fmt(v.h, 2)}, df = ${v.df}, ${pText(v.p)}`),
        },
        {
          test: "one-way ANOVA",
          text: show(
            f.anova,
            (v) =>
              `F(${v.dfBetween}, ${v.dfWithin}) = ${fmt(v.f, 2)}, ${pText(v.p)}, η² = ${
                fmt(v.etaSquared, 2)
              }`,
          ),
        },
        {
          test: "Levene (median) across seeds",
          text: show(f.levene, (v) => `W = ${fmt(v.w, 2)}, ${pText(v.p)}`),
        },
      ],
      levelRows: f.levelSummaries.map((l) => ({
        level: l.level,
        n: l.n,
        mean: fmt(l.mean, u.digits + 1),
        ci: show(l.ci, (c) => `[${fmt(c.lo, u.digits + 1)}, ${fmt(c.hi, u.digits + 1)}]`),
      })),
      pairs: f.pairs.map((p) => ({
        name: `${p.a} vs ${p.b}`,
        n: p.n,
        diff: fmt(p.diff, u.digits + 1),
        ci: show(p.ci, (c) => `${ciLevel(c.level)} [${fmt(c.lo, u.digits + 1)}, ${fmt(c.hi, u.digits + 1)}]`),
        tost: p.judgement.equivalence ? fmtP(p.judgement.equivalence.pAdjusted) : "–",
        mw: show(p.mannWhitney, (v) => `${fmtP(v.p)} → ${fmtP(v.pAdjusted)}`),
        wx: show(p.wilcoxon, (v) => `${fmtP(v.p)} → ${fmtP(v.pAdjusted)}`),
        cliff: show(p.cliffsDelta, (v) => fmt(v, 2)),
        d: show(p.cohensD, (v) => fmt(v, 2)),
        better: p.better ?? "–",
        kind: p.judgement.kind,
        verdict: p.verdict,
      })),
    })),
    design: designView(a),
    superscripts: a.superscripts === null ? null : a.superscripts.ok
      ? {
        ok: true,
        text:
          `Paired randomization tests on per-query ${a.superscripts.value.metric} (${a.superscripts.value.queries} shared queries, seeds averaged), Holm-adjusted; a letter in the table's "sig." column marks a configuration significantly better than the one with that letter.${
            a.superscripts.value.note ? " " + a.superscripts.value.note + "." : ""
          }`,
        pairs: a.superscripts.value.pairs.map((p) => ({
          a: p.a,
          b: p.b,
          diff: fmt(p.diff * u.scale, u.digits + 1),
          p: fmtP(p.p),
          pAdj: fmtP(p.pAdjusted),
        })),
      }
      : { ok: false, text: `Per-query significance not computed: ${a.superscripts.reason}.` },
  };
}

/** The design model's tables for the templates. */
function designView(a: StudyAnalysis) {
  const d = a.design;
  if (d === null) return null;
  if (!d.ok) return { ok: false, text: `Design model not fitted: ${d.reason}.` };
  const v = d.value;
  const rowsOf = (es: readonly DesignEffect[]) =>
    es.map((e) => ({
      name: e.name,
      df: String(e.df),
      f: e.df === 0 ? "not estimable" : `F(${e.df}, ${v.errorDf}) = ${fmt(e.f, 2)}`,
      p: fmtP(e.p),
      eta: fmt(e.partialEtaSquared, 2),
    }));
  const norm = v.normality.ok
    ? `D'Agostino-Pearson test of the residuals: K² = ${fmt(v.normality.value.k2, 2)}, ${
      pText(v.normality.value.p)
    }`
    : `Residual normality not checked (${v.normality.reason})`;
  return {
    ok: true,
    text:
      `One linear model over all ${v.n} analysed runs: ${
        v.factors.join(", ")
      } (named as in ${v.source}) as factors with their ` +
      `two-way interactions, seeds as replicates, type II sums of squares (each term after every term ` +
      `that does not contain it), error df ${v.errorDf}; the design is ${
        v.balanced ? "balanced" : "unbalanced (type II handles it; no slices)"
      }. ${norm}; ${
        v.used === "parametric"
          ? "the parametric F tests are read."
          : "residuals are far from normal, so the aligned-rank-transform ANOVA (Wobbrock et al. 2011) is read; " +
            "the parametric table follows it."
      }${
        v.aliased.length
          ? ` Fewer df than levels for ${v.aliased.join(", ")}: some levels coincide with levels of ` +
            "another factor (e.g. frozen has no rank), so only the contrasts the design separates are tested; " +
            "the baseline comparisons above cover the rest."
          : ""
      }`,
    art: v.art ? rowsOf(v.art) : null,
    parametric: rowsOf(v.parametric),
  };
}

function kv(obj: Record<string, unknown> | undefined, prefix = ""): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const [k, v] of Object.entries(obj ?? {})) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      out.push(...kv(v as Record<string, unknown>, `${prefix}${k}.`));
    } else {out.push({
        key: prefix + k,
        value: typeof v === "number" ? String(Number(v.toPrecision(6))) : JSON.stringify(v) ?? "",
      });}
  }
  return out;
}

/** One table of a run page: a header column, cells, and an optional heat shade per cell (0..1). */
interface DetailTable {
  name: string;
  columns: string[];
  rows: { head: string; cells: { text: string; shade?: string }[] }[];
  json?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isNumberGrid = (v: unknown): v is number[][] =>
  Array.isArray(v) && v.every((r) => Array.isArray(r) && r.every((x) => typeof x === "number"));
const cellText = (x: unknown) =>
  typeof x === "number" ? fmt(x, Number.isInteger(x) ? 0 : 3) : String(x ?? "–");

/** Rows of objects keyed by their first column (`label` for per-class scores). */
function objectTable(name: string, entries: [string, Record<string, unknown>][]): DetailTable {
  const columns = [...new Set(entries.flatMap(([, r]) => Object.keys(r)))];
  return {
    name,
    columns,
    rows: entries.map(([head, r]) => ({ head, cells: columns.map((c) => ({ text: cellText(r[c]) })) })),
  };
}

/** A confusion matrix (rows true, columns predicted) shaded by each cell's share of its row. */
function gridTable(name: string, matrix: number[][], labels?: readonly string[]): DetailTable {
  const label = (i: number) => labels?.[i] ?? String(i);
  return {
    name,
    columns: (matrix[0] ?? []).map((_, j) => label(j)),
    rows: matrix.map((r, i) => {
      const total = r.reduce((a, b) => a + b, 0);
      return {
        head: label(i),
        cells: r.map((x) => ({ text: cellText(x), shade: total > 0 ? (x / total).toFixed(3) : undefined })),
      };
    }),
  };
}

/**
 * Tables from `details`: per-class scores (an array of objects with a `label`, or an object of
 * objects) as a table, a confusion matrix (`{labels, matrix}` or a bare number grid) as a heat
 * map, anything else as indented JSON.
 */
function detailTables(details: Record<string, unknown> | undefined): DetailTable[] {
  const out: DetailTable[] = [];
  for (const [name, v] of Object.entries(details ?? {})) {
    if (isNumberGrid(v)) out.push(gridTable(name, v));
    else if (isRecord(v) && isNumberGrid(v.matrix) && Array.isArray(v.labels)) {
      out.push(gridTable(name, v.matrix, v.labels.map(String)));
    } else if (Array.isArray(v) && v.length > 0 && v.every(isRecord)) {
      out.push(objectTable(
        name,
        v.map((r, i) => {
          const { label, ...rest } = r;
          return [String(label ?? i), rest];
        }),
      ));
    } else if (isRecord(v) && Object.values(v).every(isRecord)) {
      out.push(objectTable(name, Object.entries(v as Record<string, Record<string, unknown>>)));
    } else {
      out.push({ name, columns: [], rows: [], json: JSON.stringify(v, null, 2)?.slice(0, 5000) });
    }
  }
  return out;
}

function perItemView(run: RunRecord) {
  const fields = perItemFields(run);
  const rows = fields.map((f) => {
    const scores = perItemScores(run, f);
    const xs = [...scores.values()].sort((a, b) => a - b);
    const s = summarize(xs)!;
    const worst = [...scores].sort((a, b) => a[1] - b[1]).slice(0, 3).map(([id, v]) => `${id} (${fmt(v, 3)})`)
      .join(", ");
    return {
      field: f,
      n: s.n,
      mean: fmt(s.mean, 3),
      sd: fmt(s.sd, 3),
      min: fmt(xs[0], 3),
      median: fmt(xs[Math.floor(xs.length / 2)], 3),
      max: fmt(xs[xs.length - 1], 3),
      lowest: worst,
    };
  });
  return { count: run.perItem?.length ?? 0, rows };
}

/** Render every file of the report in memory. */
export async function renderReport(
  records: readonly RunRecord[],
  opts: ReportOptions = {},
): Promise<ReportFile[]> {
  const t = loadTemplates();
  const renderer = new ChartRenderer();
  const files: ReportFile[] = [];
  try {
    const studies = buildStudies(records, { metric: opts.metric, sweep: opts.sweep });
    const studyViews = [];
    for (const study of studies) {
      const analysis = analyzeStudy(study, opts);
      const charts = [];
      for (const c of studyCharts(study, analysis)) {
        const svg = await renderer.render(c);
        const file = `charts/${study.id}-${c.id}.svg`;
        files.push({ path: file, text: svg });
        charts.push({ id: `${study.id}-${c.id}`, title: c.title, svg, file });
      }
      studyViews.push({
        id: study.id,
        task: study.task,
        dataset: study.dataset,
        metric: study.metric.name,
        direction: study.metric.direction,
        counts: {
          runs: study.runs.length,
          ok: study.ok.length,
          failed: study.failed.length,
          configs: study.groups.length,
        },
        table: tableOf(study, analysis),
        findings: studyFindings(study, analysis),
        charts,
        stats: statsView(study, analysis),
      });
    }
    const title = opts.title ?? "peft-bench report";
    const view = {
      title,
      counts: {
        runs: records.length,
        failed: records.filter((r) => r.status === "failed").length,
        studies: studies.length,
      },
      factorCols: FACTORS.map((f) => ({ trainSize: "train size" } as Record<string, string>)[f] ?? f),
      studies: studyViews,
      findings: studyViews.map((s) => s.findings),
      data: studyViews.map((s) => ({
        study: s.id,
        task: s.task,
        dataset: s.dataset,
        metric: s.metric,
        runs: s.counts.runs,
      })),
    };
    files.push({ path: "index.html", text: t.index(view) });
    files.push({ path: "REPORT.md", text: t.markdown(view) });
    files.push({ path: "summary.csv", text: summaryCsv(studies) });
    files.push({ path: "summary.tex", text: summaryTex(studies) });
    for (const run of records) {
      const charts = [];
      for (const c of runCharts(run)) {
        charts.push({ id: c.id, title: c.title, svg: await renderer.render(c as Chart) });
      }
      const study = studies.find((s) => s.runs.includes(run))!;
      files.push({
        path: `runs/${runPageName(run.runId)}`,
        text: t.run({
          title,
          run,
          study: study.id,
          status: run.status,
          failed: run.status === "failed",
          config: kv(run.config as unknown as Record<string, unknown>),
          metrics: Object.entries(run.metrics ?? {}).map(([k, v]) => ({
            key: k,
            value: fmt(v, valueDigits(k)),
            primary: k === study.metric.name,
          })),
          timing: kv(run.timing as unknown as Record<string, unknown>),
          memory: kv(run.memory as unknown as Record<string, unknown>),
          size: kv(run.size as unknown as Record<string, unknown>),
          env: kv(run.env as unknown as Record<string, unknown>),
          details: [
            ...detailTables(run.details),
            // The task's trivial baselines and tokenizer coverage, as tables beside the details.
            ...(run.trivial?.length
              ? [objectTable("trivial baselines", run.trivial.map((b) => [b.name, b.metrics]))]
              : []),
            // The frozen base's quantization, layer by layer (reports/quant.ts).
            ...((q) => q ? [objectTable("quantization per layer", q)] : [])(quantLayerRows(run)),
            ...(run.tokenizerCoverage && Object.keys(run.tokenizerCoverage).length
              ? [objectTable(
                "tokenizer coverage",
                Object.entries(run.tokenizerCoverage).map(([k, c]) => [k, { ...c }]),
              )]
              : []),
          ],
          perItem: perItemView(run),
          diagnostics: run.diagnostics ? JSON.stringify(run.diagnostics, null, 2).slice(0, 5000) : null,
          charts,
        }),
      });
    }
  } finally {
    renderer.finalize();
  }
  for (const f of files) {
    // CSV and LaTeX are never rendered as markup: a record's text there is inert data.
    if (/\.(csv|tex)$/.test(f.path)) continue;
    const own = f.path === "index.html"
      ? t.own.index
      : f.path === "REPORT.md"
      ? t.own.markdown
      : f.path.startsWith("runs/")
      ? t.own.run
      : [];
    assertNoActiveContent(f, own);
  }
  return files;
}

/** Marker file that tells a previous report's folder (safe to refresh) from any other folder. */
export const MARKER = ".peft-bench-report";

/** Throw unless `out` is absent, empty, or a previous report (so a typo cannot clobber a folder). */
export function checkOutputFolder(out: string): void {
  let entries: string[] = [];
  try {
    if (!Deno.statSync(out).isDirectory) throw new Error(`--out ${out} is a file; pass a folder`);
    entries = [...Deno.readDirSync(out)].map((e) => e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (entries.length && !entries.includes(MARKER)) {
    throw new Error(
      `output folder ${out} is not empty and holds no previous report; pick an empty or new --out folder`,
    );
  }
}

/**
 * Write the report into `out`. A non-empty folder must be a previous report (it has the marker);
 * its runs/ and charts/ are cleared first so pages of runs that are gone do not linger.
 */
export async function writeReport(out: string, files: readonly ReportFile[]): Promise<void> {
  checkOutputFolder(out);
  for (const sub of ["runs", "charts"]) {
    await Deno.remove(join(out, sub), { recursive: true }).catch(() => {});
  }
  await writeFileAtomic(join(out, MARKER), "peft-bench report folder: regenerated by `deno task report`\n");
  for (const f of files) await writeFileAtomic(join(out, f.path), f.text);
}
