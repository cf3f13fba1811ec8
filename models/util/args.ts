/**
 * Command-line plumbing shared by every task: `node:util` parseArgs (JSR's @std/cli is not
 * reachable from our machines) with one-line errors, exit code 2 for usage errors, and a
 * `--help` text generated from the option table.
 * @module
 */
import { parseArgs } from "node:util";

/** One option: its type, default and help line. */
export interface OptionSpec {
  type: "string" | "boolean";
  default?: string | boolean;
  multiple?: boolean;
  short?: string;
  help: string;
}

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** Parse `args` against `spec`; unknown flags and missing values are UsageErrors. */
export function parseCli<T extends Record<string, OptionSpec>>(
  args: string[],
  spec: T,
  allowPositionals = false,
): { values: { [K in keyof T]: T[K]["type"] extends "boolean" ? boolean : string }; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      // deno-lint-ignore no-explicit-any
      options: spec as any,
      allowPositionals,
      strict: true,
    });
    // deno-lint-ignore no-explicit-any
    return { values: values as any, positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split("\n")[0]} (see --help)`);
  }
}

/** The `--help` text: usage line then one line per option with its default. */
export function helpText(usage: string, spec: Record<string, OptionSpec>): string {
  const lines = [`usage: ${usage}`, "", "options:"];
  for (const [name, o] of Object.entries(spec)) {
    const flag = `--${name}${o.type === "string" ? " VALUE" : ""}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${o.default})` : "";
    lines.push(`  ${flag.padEnd(26)} ${o.help}${def}`);
  }
  return lines.join("\n");
}

/** Bad input (missing file, impossible option): exit code 2 wherever it is detected. */
export class InputError extends Error {}

/** `err` as bad input: usage and input errors as they are, anything else as an InputError with its message. */
export function asInputError(err: unknown): InputError | UsageError {
  return err instanceof InputError || err instanceof UsageError
    ? err
    : new InputError((err as Error).message);
}

/**
 * Run a command's main function. Errors print one line to stderr; the exit code is 2 for usage
 * errors, bad input, and any error raised before `startWork()` (validation: loading and checking
 * files and options), and 1 for failures during the work itself.
 */
export async function runMain(main: (startWork: () => void) => Promise<void>): Promise<void> {
  let working = false;
  try {
    await main(() => (working = true));
  } catch (err) {
    const e = err as Error;
    console.error(`error: ${e.message}`);
    if (Deno.env.get("PEFT_BENCH_DEBUG")) console.error(e.stack);
    Deno.exit(err instanceof UsageError || err instanceof InputError || !working ? 2 : 1);
  }
}

/** Parse a number flag, with a one-line UsageError naming the flag. */
export function numberFlag(
  name: string,
  value: string,
  check: (n: number) => boolean = Number.isFinite,
): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || !check(n)) {
    throw new UsageError(`--${name}: invalid value '${value}'`);
  }
  return n;
}
