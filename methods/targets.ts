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
import type { LlamaConfig } from "../models/config.ts";

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
  return matchTargets([...model.linears.keys()], spec);
}

/** {@link selectTargets} on a list of layer names (the decoder's, in model order). */
export function matchTargets(layerNames: string[], spec: string): string[] {
  const names = layerNames.filter((n) => n.startsWith("layers."));
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

/** Shape [out, in] of a decoder linear layer and whether it has a bias. */
export interface LinearShape {
  out: number;
  in: number;
  bias: boolean;
}

/**
 * The decoder's linear layers by name, in model order, with their shapes as the Llama architecture
 * defines them from the config alone (q [nHeads headDim, dim], k and v [nKvHeads headDim, dim],
 * o [dim, nHeads headDim], gate and up [hidden, dim], down [dim, hidden]; q/k/v biases with
 * `qkvBias`). Closed-form parameter counts are written against it, independent of a built model.
 */
export function linearShapes(cfg: LlamaConfig): Map<string, LinearShape> {
  const q = cfg.nHeads * cfg.headDim;
  const kv = cfg.nKvHeads * cfg.headDim;
  const out = new Map<string, LinearShape>();
  for (let i = 0; i < cfg.nLayers; i++) {
    const add = (kind: string, o: number, inF: number, bias = false) =>
      out.set(`layers.${i}.${kind}`, { out: o, in: inF, bias });
    add("attn.q", q, cfg.dim, cfg.qkvBias);
    add("attn.k", kv, cfg.dim, cfg.qkvBias);
    add("attn.v", kv, cfg.dim, cfg.qkvBias);
    add("attn.o", cfg.dim, q);
    add("mlp.gate", cfg.hiddenDim, cfg.dim);
    add("mlp.up", cfg.hiddenDim, cfg.dim);
    add("mlp.down", cfg.dim, cfg.hiddenDim);
  }
  return out;
}

/** The shapes of the layers `spec` selects on a model with this config, by name in model order. */
export function targetShapes(cfg: LlamaConfig, spec: string): Map<string, LinearShape> {
  const all = linearShapes(cfg);
  return new Map(matchTargets([...all.keys()], spec).map((n) => [n, all.get(n)!]));
}

/** Sum of `f` over the layers `spec` selects on a model with this config (closed-form counts). */
export function sumOverTargets(cfg: LlamaConfig, spec: string, f: (s: LinearShape) => number): number {
  let total = 0;
  for (const s of targetShapes(cfg, spec).values()) total += f(s);
  return total;
}

/**
 * PEFT-layout tensor shapes of a LoRA-shaped export: `${layer}.lora_A.weight` [r, in] and
 * `${layer}.lora_B.weight` [out, r] for every target (contract `peftTensors`).
 */
export function loraTensorShapes(cfg: LlamaConfig, spec: string, r: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, s] of targetShapes(cfg, spec)) {
    out.set(`${name}.lora_A.weight`, [r, s.in]);
    out.set(`${name}.lora_B.weight`, [s.out, r]);
  }
  return out;
}
