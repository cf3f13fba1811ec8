/**
 * The summary table `bench` prints after its runs: quality metrics, train time, peak memory and
 * trainable parameters per seed, and mean ± std over seeds.
 * @module
 */
import type { RunRecord } from "./record.ts";

/** Mean and sample standard deviation. */
export function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1
    ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1))
    : 0;
  return { mean, std };
}

/** Bytes as KiB/MiB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/** A plain-text table of the runs (Markdown-compatible). */
export function summaryTable(records: RunRecord[]): string {
  const ok = records.filter((r) => r.status === "success");
  const metricNames = [...new Set(ok.flatMap((r) => Object.keys(r.metrics)))].slice(0, 6);
  const head = ["seed", ...metricNames, "train s", "peak train mem", "trainable params", "status"];
  const rows = records.map((r) => [
    String(r.config.seed),
    ...metricNames.map((m) => (r.metrics[m] ?? NaN).toFixed(4)),
    r.timing.trainSeconds.toFixed(1),
    formatBytes(r.memory.peakTrainBytes),
    r.size.trainableParams.toLocaleString("en-US"),
    r.status === "success" ? "ok" : `FAILED: ${r.error}`,
  ]);
  if (ok.length > 1) {
    rows.push([
      "mean±std",
      ...metricNames.map((m) => {
        const s = meanStd(ok.map((r) => r.metrics[m]));
        return `${s.mean.toFixed(4)}±${s.std.toFixed(4)}`;
      }),
      meanStd(ok.map((r) => r.timing.trainSeconds)).mean.toFixed(1),
      formatBytes(meanStd(ok.map((r) => r.memory.peakTrainBytes)).mean),
      ok[0].size.trainableParams.toLocaleString("en-US"),
      "",
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  const title = records[0]
    ? `${records[0].name.replace(/ seed\d+$/, "")} on ${records[0].config.dataset}`
    : "";
  return [title, line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join(
    "\n",
  );
}
