/**
 * Target selection: which linear layers a method adapts, by preset or name pattern.
 *
 * Presets (the sets common PEFT studies compare):
 * `q+v`, `q+k+v`, `q+k+v+o`, `attn` (= q+k+v+o), `mlp` (gate, up, down), `all-linear` (attn + mlp;
 * never the output head). Otherwise a comma-separated list of layer-name suffixes (`q,v,down`,
 * `attn.q`), or `re:PATTERN`, a regular expression on full names (`re:layers\.[0-3]\.attn\.q$`).
 * @module
 */
import type { LlamaModel } from "../models/llama.ts";

/** Target presets by name, as lists of layer suffixes. */
export const TARGET_PRESETS: Record<string, string[]> = {
  "q+v": ["attn.q", "attn.v"],
  "q+k+v": ["attn.q", "attn.k", "attn.v"],
  "q+k+v+o": ["attn.q", "attn.k", "attn.v", "attn.o"],
  attn: ["attn.q", "attn.k", "attn.v", "attn.o"],
  mlp: ["mlp.gate", "mlp.up", "mlp.down"],
  "all-linear": ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"],
};

/** Short suffixes users may write, mapped to layer suffixes. */
const SHORT: Record<string, string> = {
  q: "attn.q",
  k: "attn.k",
  v: "attn.v",
  o: "attn.o",
  gate: "mlp.gate",
  up: "mlp.up",
  down: "mlp.down",
};

/**
 * Names of the model's decoder linear layers selected by `spec`, in model order. Throws a one-line
 * error listing the presets when the spec matches nothing or names an unknown layer kind.
 */
export function selectTargets(model: LlamaModel, spec: string): string[] {
  const names = [...model.linears.keys()].filter((n) => n.startsWith("layers."));
  let match: (name: string) => boolean;
  if (spec.startsWith("re:")) {
    let re: RegExp;
    try {
      re = new RegExp(spec.slice(3));
    } catch (err) {
      throw new Error(`--targets ${spec}: invalid regular expression (${(err as Error).message})`);
    }
    match = (n) => re.test(n);
  } else {
    const suffixes = TARGET_PRESETS[spec] ??
      spec.split(",").map((s) => s.trim()).filter(Boolean).map((s) => SHORT[s] ?? s);
    for (const s of suffixes) {
      if (!names.some((n) => n.endsWith(`.${s}`))) {
        throw new Error(
          `--targets ${spec}: no layer named '*.${s}'; use a preset (${
            Object.keys(TARGET_PRESETS).join(", ")
          }), ` +
            `suffixes (${Object.keys(SHORT).join(", ")}) or re:PATTERN`,
        );
      }
    }
    match = (n) => suffixes.some((s) => n.endsWith(`.${s}`));
  }
  const selected = names.filter(match);
  if (selected.length === 0) throw new Error(`--targets ${spec}: matches no linear layer of the model`);
  return selected;
}
