/**
 * The tolerance policy of `deno task check` (`baselines/policy.json`): its schema, validated strictly
 * so that a typo in a key is an error rather than a silently disabled check.
 * @module
 */
import { z } from "zod";
import { InputError } from "../models/util/args.ts";
import { type Direction, metricDirection } from "./metrics/table.ts";
/**
 * A quality metric's tolerance: within `abs` of the baseline, or within `rel` times the baseline's
 * magnitude (derived metrics such as perplexities, where float noise scales with the value).
 * Directions come from the metric table (bench/metrics/table.ts); `better` is only for metrics the
 * table does not know, and may not contradict it.
 */
const QualityTol = z.strictObject({
  abs: z.number().nonnegative().optional(),
  rel: z.number().nonnegative().optional(),
  better: z.enum(["higher", "lower"]).optional(),
}).refine((t) => t.abs !== undefined || t.rel !== undefined, { message: "give abs, rel or both" });
const RelTol = z.strictObject({ rel: z.number().nonnegative() });
const comment = { $comment: z.string().optional() };

/** Schema of the tolerance policy file (unknown keys are errors, so a typo cannot disable a check). */
export const PolicySchema = z.strictObject({
  ...comment,
  quality: z.strictObject({ ...comment, default: QualityTol, metrics: z.record(z.string(), QualityTol) }),
  memory: z.strictObject({ ...comment, peakTrainBytes: RelTol, peakInferBytes: RelTol }),
  size: z.strictObject({ ...comment, trainableParams: RelTol, totalParams: RelTol, adapterBytes: RelTol }),
  /** `record.forgetting.delta` (nats per token, lower is better); absent: not checked. */
  forgetting: z.strictObject({ ...comment, delta: QualityTol }).optional(),
  latency: z.strictObject({
    ...comment,
    runThreshold: z.number().gt(1),
    /** Fewer step timings than this on either side: the run's latency is reported, never gated. */
    runMinSteps: z.number().int().nonnegative().default(10),
    suiteThreshold: z.number().gt(1),
    suiteMinRuns: z.number().int().positive(),
    metrics: z.strictObject({
      stepLatencyMs: z.enum(["gate", "report"]),
      trainTokensPerSecond: z.enum(["gate", "report"]),
      inferLatencyMs: z.enum(["gate", "report"]),
    }),
  }),
});

/** A parsed tolerance policy. */
export type Policy = z.infer<typeof PolicySchema>;

/** One quality metric's tolerance. */
export type QualityTolerance = z.infer<typeof QualityTol>;

/**
 * Whether `current` is within `tol` of `baseline`: `|current - baseline| <= abs`, or
 * `<= rel * |baseline|`. Two NaNs agree; NaN against a number never does.
 */
export function withinTolerance(baseline: number, current: number, tol: QualityTolerance): boolean {
  if (Number.isNaN(baseline) || Number.isNaN(current)) return Number.isNaN(baseline) && Number.isNaN(current);
  const delta = Math.abs(current - baseline);
  if (baseline === current) return true; // equal infinities too
  return (tol.abs !== undefined && delta <= tol.abs) ||
    (tol.rel !== undefined && delta <= tol.rel * Math.abs(baseline));
}

/**
 * Which way a quality metric improves: the metric table's direction, else the policy's `better`
 * for that metric, else the policy default's `better`; null when nobody says (a change beyond
 * tolerance then fails as "changed", never as "better").
 */
export function qualityDirection(metric: string, policy: Policy): Direction | null {
  return metricDirection(metric) ?? policy.quality.metrics[metric]?.better ?? policy.quality.default.better ??
    null;
}

/** A tolerance in words for messages: `abs 1e-6`, `rel 1e-5`, or `abs 1e-6 or rel 1e-5`. */
export function describeTolerance(tol: QualityTolerance): string {
  return [tol.abs !== undefined ? `abs ${tol.abs}` : "", tol.rel !== undefined ? `rel ${tol.rel}` : ""]
    .filter(Boolean).join(" or ");
}

/** Parse and validate policy JSON text; the one-line error names the file, the key and the fix. */
export function parsePolicy(text: string, source: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not valid JSON (${(err as Error).message}); fix the policy file`);
  }
  const parsed = PolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new InputError(
      `${source}: ${at}: ${issue.message} (see baselines/README.md for the policy format)`,
    );
  }
  for (const [m, tol] of Object.entries(parsed.data.quality.metrics)) {
    const table = metricDirection(m);
    if (tol.better !== undefined && table !== undefined && tol.better !== table) {
      throw new InputError(
        `${source}: quality.metrics.${m}.better is "${tol.better}" but ${m} is ${table}-is-better in ` +
          "bench/metrics/table.ts; remove 'better' (directions come from the metric table)",
      );
    }
  }
  return parsed.data;
}

/** Read and validate a policy file. */
export async function readPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new InputError(
        `policy file not found: ${path} (pass --policy FILE or add policy.json to the baseline)`,
      );
    }
    throw err;
  }
  return parsePolicy(text, path);
}
