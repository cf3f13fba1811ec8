/**
 * The tolerance policy of `deno task check` (`baselines/policy.json`): its schema, validated strictly
 * so that a typo in a key is an error rather than a silently disabled check.
 * @module
 */
import { z } from "zod";
import { InputError } from "./args.ts";
const QualityTol = z.strictObject({ abs: z.number().nonnegative(), better: z.enum(["higher", "lower"]) });
const RelTol = z.strictObject({ rel: z.number().nonnegative() });
const comment = { $comment: z.string().optional() };

/** Schema of the tolerance policy file (unknown keys are errors, so a typo cannot disable a check). */
export const PolicySchema = z.strictObject({
  ...comment,
  quality: z.strictObject({ ...comment, default: QualityTol, metrics: z.record(z.string(), QualityTol) }),
  memory: z.strictObject({ ...comment, peakTrainBytes: RelTol, peakInferBytes: RelTol }),
  size: z.strictObject({ ...comment, trainableParams: RelTol, totalParams: RelTol, adapterBytes: RelTol }),
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
