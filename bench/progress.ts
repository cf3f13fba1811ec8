/**
 * A progress bar with ETA on stderr. On a terminal it redraws one line at most every 200 ms; in
 * logs (no TTY) it prints a plain line every 10% so CI output stays short.
 * @module
 */

/** Format seconds as `1h02m`, `5m12s` or `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Progress of a known number of units. */
export class Progress {
  readonly total: number;
  readonly label: string;
  #done = 0;
  #start = performance.now();
  #lastDraw = 0;
  #lastDecile = -1;
  #tty = Deno.stderr.isTerminal();
  #quiet: boolean;

  constructor(total: number, label: string, quiet = false) {
    this.total = total;
    this.label = label;
    this.#quiet = quiet;
  }

  /** Seconds since the start. */
  get elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** Estimated seconds left, from the mean rate so far. */
  get eta(): number {
    return this.#done > 0 ? (this.elapsed / this.#done) * (this.total - this.#done) : NaN;
  }

  /** Advance by `n` units; `info` is shown after the bar (e.g. the current loss). */
  tick(n = 1, info = ""): void {
    this.#done = Math.min(this.total, this.#done + n);
    if (this.#quiet) return;
    const frac = this.total > 0 ? this.#done / this.total : 1;
    const line =
      `${this.label} ${bar(frac)} ${(100 * frac).toFixed(0).padStart(3)}% ${this.#done}/${this.total}` +
      `${info ? ` ${info}` : ""} | ${formatDuration(this.elapsed)} elapsed, ETA ${formatDuration(this.eta)}`;
    const now = performance.now();
    if (this.#tty) {
      if (now - this.#lastDraw > 200 || this.#done === this.total) {
        this.#lastDraw = now;
        Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
        if (this.#done === this.total) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
      }
    } else {
      const decile = Math.floor(frac * 10);
      if (decile !== this.#lastDecile) {
        this.#lastDecile = decile;
        console.error(line);
      }
    }
  }
}

function bar(frac: number, width = 24): string {
  const full = Math.round(frac * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}
