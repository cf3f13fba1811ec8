/**
 * Recorded trivial baselines (BM25, random ranking, unigram) and tokenizer coverage in the report:
 * findings sentences with the numbers, the tables in REPORT.md and index.html, warnings above the
 * documented thresholds.
 */
import assert from "node:assert/strict";
import { analyzeStudy } from "./analysis.ts";
import { buildStudies } from "./data.ts";
import { renderReport } from "./site.ts";
import { studyFindings } from "./findings.ts";
import { fixtureConfig, fixtureRecord } from "./testing.ts";
import { COVERAGE_LIMITS, coverageRows, recordedBaselines } from "./baselines.ts";
import { Rng } from "../models/util/rng.ts";
import type { RunRecord } from "../bench/record.ts";
import type { SplitCoverage } from "../bench/tasks/coverage.ts";

/** A split's coverage with the given ratios (counts consistent with them over 1000 tokens). */
function coverage(byteShare: number, tokensPerWord: number, truncatedShare: number | null): SplitCoverage {
  return {
    texts: 100,
    tokens: 1000,
    words: Math.round(1000 / tokensPerWord),
    chars: 4000,
    unknownTokens: 0,
    byteFallbackTokens: Math.round(1000 * byteShare),
    unknownShare: 0,
    byteFallbackShare: byteShare,
    tokensPerWord,
    tokensPerChar: 0.25,
    truncated: truncatedShare === null ? null : Math.round(100 * truncatedShare),
    truncatedShare,
    maxLength: truncatedShare === null ? null : 48,
  };
}

/** Retrieval runs at ranks 4 and 16 (MRR about 0.5 and 0.52), two seeds, with the task's baselines. */
async function retrievalRuns(bm25: number, testCoverage: SplitCoverage): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const seed of [0, 1]) {
    for (const rank of [4, 16]) {
      const config = fixtureConfig({
        task: "retrieve",
        methodOptions: { targets: "qv", rank, alpha: 16 },
        seed,
      });
      const r = await fixtureRecord(config, new Rng(seed * 100 + rank), 20, 4);
      r.metrics.mrr = 0.5 + (rank === 16 ? 0.02 : 0) + 0.001 * seed;
      r.details = { ...r.details, corpusSize: 200 }; // enough for the report's own closed form
      r.trivial = [
        { name: "bm25", metrics: { mrr: bm25, "ndcg@10": 0.6 }, note: "k1=0.9, b=0.4" },
        { name: "random", metrics: { mrr: 0.0259, "ndcg@10": 0.02 } },
      ];
      r.tokenizerCoverage = { "test queries": testCoverage, documents: coverage(0, 1.5, 0) };
      out.push(r);
    }
  }
  return out;
}

Deno.test("findings: every configuration at or below BM25, with the numbers; the recorded random ranking replaces the derived one", async () => {
  const [s] = buildStudies(await retrievalRuns(0.61, coverage(0, 1.6, 0.02)));
  const a = analyzeStudy(s, { resamples: 50 });
  assert.equal(
    a.randomRanking,
    null,
    "the records' exact expectation is used, not the one-relevant closed form",
  );
  const older = (await retrievalRuns(0.61, coverage(0, 1.6, 0.02))).map((r) => ({
    ...r,
    trivial: undefined,
  }));
  assert.notEqual(analyzeStudy(buildStudies(older)[0], { resamples: 50 }).randomRanking, null);
  const [bm25, random] = recordedBaselines(s);
  assert.deepEqual([bm25.name, bm25.value, bm25.runs, bm25.notBetter.length, bm25.configs], [
    "bm25",
    0.61,
    4,
    2,
    2,
  ]);
  assert.deepEqual(random.notBetter, []);
  const lines = studyFindings(s, a).lines;
  const bm25Line = lines.find((l) => l.startsWith("Trivial baseline BM25"))!;
  assert.match(bm25Line, /mrr 61\.00% on the same test items, scored by the task \(k1=0\.9, b=0\.4\)/);
  assert.match(bm25Line, /every configuration \(2\) scored at or below BM25 \(best mean 52\.05%\)/);
  assert.match(
    lines.find((l) => l.startsWith("Trivial baseline random ranking"))!,
    /mrr 2\.59%.*every configuration scored better/,
  );
  assert.ok(
    !lines.some((l) => /closed form/.test(l)),
    "no derived random-ranking line beside the recorded one",
  );
  assert.ok(!lines.some((l) => /coverage warning/.test(l)), "English-like coverage raises no warning");
  // Between the two configurations: one of two at or below.
  const [s2] = buildStudies(await retrievalRuns(0.51, coverage(0, 1.6, 0.02)));
  assert.match(
    studyFindings(s2, analyzeStudy(s2, { resamples: 50 })).lines.join("\n"),
    /mrr 51\.00% .*; 1 of 2 configurations scored at or below it: lora qv r4/,
  );
});

Deno.test("coverage warnings above the thresholds (byte fallback, tokens per word, truncation), and only above", async () => {
  // Cyrillic through an English byte-level BPE: 93% byte tokens, 15 tokens per word, 92% of texts cut.
  const bad = coverage(0.93, 15.4, 0.92);
  const [s] = buildStudies(await retrievalRuns(0.61, bad));
  const row = coverageRows(s).find((r) => r.split === "test queries")!;
  assert.equal(row.warnings.length, 3);
  const lines = studyFindings(s, analyzeStudy(s, { resamples: 50 })).lines.filter((l) =>
    /coverage warning/.test(l)
  );
  assert.equal(lines.length, 3);
  assert.match(
    lines[0],
    /93\.0% of the test queries tokens are unknown \(0\.0%\) or byte-fallback \(93\.0%\) tokens, above 5\.0%/,
  );
  assert.match(lines[1], /the test queries text takes 15\.40 tokens per word .* above 4/);
  assert.match(
    lines[2],
    /92\.0% of the test queries texts are longer than --max-length 48 and were cut, above 10\.0%: raise --max-length/,
  );
  // At the limits exactly: no warning.
  const edge = coverage(
    COVERAGE_LIMITS.fallbackShare,
    COVERAGE_LIMITS.tokensPerWord,
    COVERAGE_LIMITS.truncatedShare,
  );
  const [e] = buildStudies(await retrievalRuns(0.61, edge));
  assert.deepEqual(coverageRows(e).flatMap((r) => r.warnings), []);
});

Deno.test("REPORT.md and index.html show the recorded baselines and the coverage table", async () => {
  const files = await renderReport(await retrievalRuns(0.61, coverage(0.93, 15.4, 0.92)), { resamples: 50 });
  const md = files.find((f) => f.path === "REPORT.md")!.text;
  const html = files.find((f) => f.path === "index.html")!.text;
  assert.match(md, /\| BM25 \| 61\.00% \| {2}\| 4 \| 2 of 2 \| k1=0\.9, b=0\.4 \|/);
  assert.match(
    md,
    /\| test queries \| 4 \| 93\.0% \| 0\.0% \| 93\.0% \| 15\.40 \| 0\.25 \| 92\.0% \(at 48\) \| yes \|/,
  );
  assert.match(
    md,
    /\| documents \| 4 \| 0\.0% \| 0\.0% \| 0\.0% \| 1\.50 \| 0\.25 \| 0\.0% \(at 48\) \| no \|/,
  );
  assert.match(md, /## Findings[\s\S]*every configuration \(2\) scored at or below BM25/);
  assert.match(html, /<h4>Trivial baselines scored by the task<\/h4>/);
  assert.match(html, /<tr class="warn"><td>test queries<\/td>/);
  assert.match(html, /Tokenizer coverage warning: 93\.0% of the test queries tokens/);
});
