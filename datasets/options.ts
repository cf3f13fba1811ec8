/**
 * Dataset options: one strict zod schema per dataset kind (the same style as the methods' option
 * schemas), and how a user sets an option on the command line (`--data-opt KEY=VALUE`), for the
 * loaders' error hints.
 *
 * Values may arrive as typed values (library callers, JSON) or as the strings of the command line:
 * number and boolean options accept their string forms (`"0.2"`, `"true"`); text options stay the
 * text as given (a column named `007` stays `007`). No schema has defaults: each loader keeps its
 * own, so a run config records only the options a user set.
 * @module
 */
import { z } from "zod";

/** How a user sets dataset option `key` on the bench command line, e.g. `--data-opt lang=VALUE`. */
export function dataOptionFlag(key: string, value: unknown = "VALUE"): string {
  return `--data-opt ${key}=${value}`;
}

/** A number option that also accepts its decimal string form. */
const numeric = <T extends z.ZodType>(inner: T) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v),
    inner,
  );

/** A boolean option that also accepts "true" / "false". */
const flag = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());

const count = numeric(z.number().int().positive());
const fraction = numeric(z.number().min(0).lt(1));
const text = z.string().trim().min(1);

/** Size caps of the WordNet classification and LM datasets. */
export const wordnetCapSchema = z.object({ maxDev: count.optional(), maxTest: count.optional() }).strict();

/** Concept-retrieval options (wordnet-concepts; see concepts.ts). */
export const conceptSchema = z.object({
  withHypernym: flag.optional(),
  binary: flag.optional(),
  neighborCredit: flag.optional(),
  maxTrainQueries: count.optional(),
  maxDevQueries: count.optional(),
  maxTestQueries: count.optional(),
}).strict();

/** SKOS thesauri: the concept options plus the label language. */
export const skosSchema = conceptSchema.extend({ lang: text.optional() }).strict();

/** Users' classification files (csv:, tsv:, jsonl:; see user_classify.ts). */
export const classifyFileSchema = z.object({
  dev: text.optional(),
  test: text.optional(),
  textColumn: text.optional(),
  labelColumn: text.optional(),
  idColumn: text.optional(),
  devFraction: fraction.optional(),
  testFraction: fraction.optional(),
}).strict();

/** Users' plain text for lm (text:). */
export const textLmSchema = z.object({ testFraction: numeric(z.number().gt(0).lt(1)).optional() }).strict();

/** Datasets without options (sotu, beir:). */
export const noOptionsSchema = z.object({}).strict();

/** Any dataset option schema. */
export type DatasetOptionSchema = z.ZodObject;

/** The keys a schema accepts, in declaration order. */
export function optionKeys(schema: DatasetOptionSchema): string[] {
  return Object.keys(schema.shape);
}

/**
 * Validate `options` with `schema`; the error is one line naming the dataset, the bad option and
 * (for an unknown key) every valid key, e.g. `dataset sotu takes no options`.
 */
export function parseWithSchema(
  dataset: string,
  schema: DatasetOptionSchema,
  options: Record<string, unknown>,
): Record<string, unknown> {
  const result = schema.safeParse(options);
  if (result.success) return result.data as Record<string, unknown>;
  const issue = result.error.issues[0];
  const keys = optionKeys(schema);
  if (issue.code === "unrecognized_keys") {
    const bad = (issue as { keys: string[] }).keys;
    throw new Error(
      keys.length === 0
        ? `dataset ${dataset} takes no options (got '${bad.join("', '")}')`
        : `dataset ${dataset} does not take option${bad.length > 1 ? "s" : ""} '${bad.join("', '")}'; ` +
          `valid keys: ${keys.join(", ")}`,
    );
  }
  throw new Error(`dataset ${dataset}: option '${issue.path.join(".")}': ${issue.message}`);
}
