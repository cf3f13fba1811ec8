/**
 * Reads a run record's `diagnostics` (written by `bench --diagnostics`, typed there only as
 * `Record<string, unknown>`) into the few numbers the charts draw. Records come from disk and
 * may be old, partial or hand-edited, so every field is checked and anything malformed is
 * left out rather than drawn wrong.
 * @module
 */
import type { RunRecord } from "../bench/record.ts";

/** One adapted layer's update: its spectrum and entanglement profile. */
export interface LayerDiagnostics {
  /** Layer name, e.g. `layers.0.attn.q`. */
  name: string;
  rows: number;
  cols: number;
  /** Nominal rank the layer's ratios use (min(rows, cols) for methods without one). */
  nominalRank: number;
  /** s_1 >= s_2 >= ... of the update. */
  singularValues: number[];
  effectiveRank: number;
  /** Bond entropies S(l) at cuts l = 1..L-1, with their maxima, or null (zero update). */
  entanglement: { sites: number[]; entropy: number[]; bound: number[] } | null;
}

/** One model's attention entropy curve S(l) (mean over layers) and its fit a + b ln l. */
export interface AttentionCurve {
  lengths: number[];
  entropy: number[];
  fit: { a: number; b: number; r2: number };
}

/** The chartable part of a run's diagnostics. */
export interface RunDiagnostics {
  /** The method's nominal rank, or null (full fine-tuning, IA3, ...). */
  nominalRank: number | null;
  layers: LayerDiagnostics[];
  /** Frozen vs adapted attention entropy, or null when not probed (or the probe failed). */
  attention: { frozen: AttentionCurve; adapted: AttentionCurve; deltaB: number } | null;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every(finite);

function layerOf(name: string, v: unknown): LayerDiagnostics | null {
  if (!isObj(v)) return null;
  const { rows, cols, nominalRank, singularValues, effectiveRank } = v;
  if (!finite(rows) || !finite(cols) || !finite(nominalRank) || !finite(effectiveRank)) return null;
  if (!numbers(singularValues) || singularValues.length === 0) return null;
  const e = v.entanglement;
  const entanglement = isObj(e) && numbers(e.sites) && numbers(e.entropy) && numbers(e.bound) &&
      e.entropy.length === e.bound.length && e.entropy.length === e.sites.length - 1
    ? { sites: e.sites, entropy: e.entropy, bound: e.bound }
    : null;
  return { name, rows, cols, nominalRank, singularValues, effectiveRank, entanglement };
}

function curveOf(v: unknown): AttentionCurve | null {
  if (!isObj(v) || !isObj(v.overall)) return null;
  const { lengths, entropy, fit } = v.overall;
  if (!numbers(lengths) || !numbers(entropy) || lengths.length !== entropy.length || lengths.length < 2) {
    return null;
  }
  if (!isObj(fit) || !finite(fit.a) || !finite(fit.b) || !finite(fit.r2)) return null;
  return { lengths, entropy, fit: { a: fit.a, b: fit.b, r2: fit.r2 } };
}

/** The run's diagnostics in chartable form, or null when it has none worth drawing. */
export function diagnosticsOf(run: RunRecord): RunDiagnostics | null {
  const d = run.diagnostics;
  if (!isObj(d)) return null;
  const layers = isObj(d.layers)
    ? Object.entries(d.layers).map(([n, v]) => layerOf(n, v)).filter((l) => l !== null)
    : [];
  const a = d.attention;
  const frozen = isObj(a) ? curveOf(a.frozen) : null;
  const adapted = isObj(a) ? curveOf(a.adapted) : null;
  const attention = frozen && adapted && isObj(a) && finite(a.deltaB)
    ? { frozen, adapted, deltaB: a.deltaB }
    : null;
  if (layers.length === 0 && attention === null) return null;
  return { nominalRank: finite(d.nominalRank) ? d.nominalRank : null, layers, attention };
}
