/**
 * Every PEFT method by name. Adding a method: write `methods/NAME.ts` exporting a
 * `MethodDefinition` with its `contract`, its test `methods/NAME_test.ts`, and list it here;
 * `registry_contract_test.ts` checks every entry.
 * @module
 */
import type { MethodDefinition } from "./types.ts";
import { frozen, full } from "./baselines.ts";
import { lora, rslora } from "./lora.ts";
import { dora } from "./dora.ts";
import { pissa } from "./pissa.ts";
import { vera } from "./vera.ts";
import { adalora } from "./adalora.ts";
import { orthogeolora } from "./orthogeolora.ts";
import { loha } from "./loha.ts";
import { lokr } from "./lokr.ts";
import { krona } from "./krona.ts";
import { glora } from "./glora.ts";
import { ia3 } from "./ia3.ts";
import { bitfit } from "./bitfit.ts";
import { lnTuning } from "./ln_tuning.ts";
import { houlsby } from "./houlsby.ts";
import { compacter } from "./compacter.ts";
import { promptTuning } from "./prompt_tuning.ts";
import { prefixTuning } from "./prefix_tuning.ts";
import { intrinsicSaid } from "./intrinsic_said.ts";
import { galore } from "./galore.ts";
import { oft } from "./oft.ts";
import { hra } from "./hra.ts";
import { boft } from "./boft.ts";
import { road } from "./road.ts";
import { delora } from "./delora.ts";
import { miss } from "./miss.ts";
import { fourierft } from "./fourierft.ts";
import { vblora } from "./vblora.ts";
import { trainableTokens } from "./trainable_tokens.ts";
import { llamaAdapter } from "./llama_adapter.ts";
import { pTuning } from "./p_tuning.ts";
import { c3a } from "./c3a.ts";
import { lily } from "./lily.ts";
import { shira } from "./shira.ts";
import { randlora } from "./randlora.ts";
import { waveft } from "./waveft.ts";
import { tinylora } from "./tinylora.ts";

// deno-lint-ignore no-explicit-any
const ALL: MethodDefinition<any>[] = [
  frozen,
  full,
  lora,
  rslora,
  houlsby,
  compacter,
  promptTuning,
  prefixTuning,
  intrinsicSaid,
  galore,
  loha,
  lokr,
  krona,
  glora,
  ia3,
  bitfit,
  lnTuning,
  dora,
  pissa,
  vera,
  adalora,
  orthogeolora,
  oft,
  hra,
  boft,
  road,
  delora,
  miss,
  fourierft,
  vblora,
  trainableTokens,
  llamaAdapter,
  pTuning,
  c3a,
  lily,
  shira,
  randlora,
  waveft,
  tinylora,
];

/** Methods by name, in listing order. */
// deno-lint-ignore no-explicit-any
export const METHODS: ReadonlyMap<string, MethodDefinition<any>> = new Map(ALL.map((m) => [m.name, m]));

/** A method by name; an unknown name lists the known ones. */
// deno-lint-ignore no-explicit-any
export function getMethod(name: string): MethodDefinition<any> {
  const m = METHODS.get(name);
  if (!m) throw new Error(`unknown method '${name}'; known methods: ${[...METHODS.keys()].join(", ")}`);
  return m;
}

/**
 * Validate a method's options with its schema; the error is one line naming the bad option, e.g.
 * `method bitfit does not take option 'rank'`.
 */
export function parseMethodConfig<C>(method: MethodDefinition<C>, options: Record<string, unknown>): C {
  const result = method.schema.safeParse(options);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as { keys: string[] }).keys;
    throw new Error(
      `method ${method.name} does not take option${keys.length > 1 ? "s" : ""} '${keys.join("', '")}'`,
    );
  }
  throw new Error(`method ${method.name}: option '${issue.path.join(".")}': ${issue.message}`);
}

/** The README's method table (Markdown rows, header included), generated from the registry. */
export function methodReadmeTable(): string {
  const rows = [...METHODS.values()].map((m) =>
    `| \`${m.name}\` | ${m.mergeable ? "yes" : "no"} | ${m.description} |`
  );
  return ["| method | mergeable | what |", "| --- | --- | --- |", ...rows].join("\n");
}
