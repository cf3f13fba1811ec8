/**
 * WaveFT (Bilican et al. 2025, "Exploring Sparsity for Parameter Efficient Fine Tuning Using
 * Wavelets", arXiv:2505.12532), as PEFT's `WaveFTConfig` / `waveft.layer.WaveFTLinear` (0.20.1.dev0).
 *
 * Formula: each adapted W [out, in] trains n wavelet coefficients c at fixed positions of a grid;
 * dW = scaling * IDWT2(grid), one level of PEFT's `waverec2d`. As PEFT: the grid is [out, in] plus
 * the wavelet's reduction L - 2 (filter length L), each rounded up to even, with position (r, q)
 * at (r + (H - out) // 2, q + (W - in) // 2); quadrants cA | cH / cV | cD go through a stride-2
 * transposed convolution with lo x lo, hi x lo, lo x hi, hi x hi (rows x columns), cropped by
 * L - 2 per side, then to [out, in] from the top-left. So each coefficient adds one outer product,
 * dW = scaling U diag(c) V^T, U [out, n] / V [in, n] holding a shifted lo or hi filter per column
 * (hi on rows in the right half, on columns in the bottom half); the forward x dW^T =
 * scaling ((x V) c) U^T rebuilds U, V per step from integer shifts and never builds dW. With
 * `useIdwt=false` (PEFT `use_idwt`) dW is the sparse grid times scaling. Filters as PEFT's
 * `wavelet.py`: rec_lo = h, rec_hi[i] = (-1)^i h[L-1-i]; only families with closed-form h are
 * accepted: db1 (Haar, PEFT's default), db2 = sym2, db3 = sym3. PEFT's others are refused.
 *
 * Initialisation, as PEFT: positions are the first n of a random permutation of out * in seeded
 * by `randomLocSeed` (PEFT `random_loc_seed` 777), alike for every layer; PEFT draws them with
 * `torch.randperm`, peft-bench with its own generator (as FourierFT), so they differ. Hence no PEFT
 * export: PEFT saves only `waveft_spectrum` and redraws the positions at load. c starts at zero
 * (PEFT `init_weights=True`: identity at init), or normal with std 0.01 with `initWeights=false`.
 *
 * Trainable parameters per layer: n (`nFrequency`, PEFT `n_frequency` 2592, at most out * in); with
 * `proportionalParameters`, max(1, round(n T out in / sum(out in))) over the T targets (Python's
 * half-to-even round). Options: `targets` (PEFT's Llama default q_proj, v_proj), `nFrequency`,
 * `scaling` (25), `waveletFamily` (db1), `useIdwt`, `randomLocSeed`, `initWeights`,
 * `proportionalParameters`. Mergeable: W' = W + dW.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { LlamaConfig } from "../models/config.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, targetShapes } from "./targets.ts";
import { trainableVariable, wrapLinears } from "./common.ts";
import { frequencyLocations } from "./fourierft.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** The wavelet families implemented (closed-form filters); PEFT accepts more. */
export const WAVEFT_WAVELETS = ["db1", "db2", "db3", "sym2", "sym3"] as const;

/**
 * The reconstruction low-pass filter h of a supported family, from the closed forms: Haar
 * (1, 1) / sqrt 2; Daubechies-2 (1 + s3, 3 + s3, 3 - s3, 1 - s3) / (4 sqrt 2); Daubechies-3 with
 * s10 = sqrt 10, t = sqrt(5 + 2 s10): (1 + s10 + t, 5 + s10 + 3t, 10 - 2 s10 + 2t,
 * 10 - 2 s10 - 2t, 5 + s10 - 3t, 1 + s10 - t) sqrt 2 / 32. sym2 and sym3 equal db2 and db3 (PEFT
 * lists them with the same values).
 */
export function waveletLowpass(family: string): number[] {
  const r2 = Math.SQRT2;
  switch (family) {
    case "db1":
      return [1 / r2, 1 / r2];
    case "db2":
    case "sym2": {
      const s3 = Math.sqrt(3);
      return [1 + s3, 3 + s3, 3 - s3, 1 - s3].map((v) => v / (4 * r2));
    }
    case "db3":
    case "sym3": {
      const s10 = Math.sqrt(10);
      const t = Math.sqrt(5 + 2 * s10);
      return [
        1 + s10 + t,
        5 + s10 + 3 * t,
        10 - 2 * s10 + 2 * t,
        10 - 2 * s10 - 2 * t,
        5 + s10 - 3 * t,
        1 + s10 - t,
      ]
        .map((v) => (v * r2) / 32);
    }
    default:
      throw new Error(
        `waveft: --opt waveletFamily=${family} is not implemented (no closed-form filters here); use one of ${
          WAVEFT_WAVELETS.join(", ")
        }`,
      );
  }
}

/** PEFT's reconstruction filters of a family: rec_lo = h, rec_hi[i] = (-1)^i h[L-1-i]. */
export function waveletFilters(family: string): { lo: number[]; hi: number[] } {
  const lo = waveletLowpass(family);
  const L = lo.length;
  return { lo, hi: lo.map((_, i) => (i % 2 === 0 ? 1 : -1) * lo[L - 1 - i]) };
}

/** WaveFT options (PEFT `WaveFTConfig`, with its defaults). */
export const waveftSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Wavelet coefficients per layer (PEFT `n_frequency`). */
  nFrequency: z.number().int().positive().default(2592),
  /** The update's scale (PEFT `scaling`). */
  scaling: z.number().positive().default(25),
  /** Wavelet family (PEFT `wavelet_family`; db1 = Haar). */
  waveletFamily: z.string().default("db1"),
  /** Inverse wavelet transform of the grid (PEFT `use_idwt`); false: the sparse grid is dW / scaling. */
  useIdwt: z.boolean().default(true),
  /** Seed of the coefficient positions (PEFT `random_loc_seed`). */
  randomLocSeed: z.number().int().nonnegative().default(777),
  /** Zero coefficients at init (PEFT `init_weights`; false: normal, std 0.01). */
  initWeights: z.boolean().default(true),
  /** Split n T over the T targets in proportion to out * in (PEFT `proportional_parameters`). */
  proportionalParameters: z.boolean().default(false),
}).strict();

/** WaveFT options after defaults. */
export type WaveftConfig = z.infer<typeof waveftSchema>;

/** Python's round(): to the nearest integer, halves to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Coefficients per target layer, by name: n for each, or with `proportionalParameters` PEFT's
 * `_calculate_proportional_parameters` (budget n T split by out * in, at least 1 each).
 */
export function waveftBudgets(
  shapes: Map<string, { out: number; in: number }>,
  config: Pick<WaveftConfig, "nFrequency" | "proportionalParameters">,
): Map<string, number> {
  const total = [...shapes.values()].reduce((s, x) => s + x.out * x.in, 0);
  const budget = config.nFrequency * shapes.size;
  return new Map([...shapes].map(([name, s]) => [
    name,
    config.proportionalParameters
      ? Math.max(1, roundHalfEven(((s.out * s.in) / total) * budget))
      : config.nFrequency,
  ]));
}

/**
 * Where each coefficient's outer product lands: dW[p, q] += scaling c_l f_l[p - rowShift_l]
 * g_l[q - colShift_l], f_l the filter `rowHi_l ? hi : lo` (g_l likewise), following PEFT's
 * padding, quadrant split, transposed convolution and crops (module doc).
 */
export interface WaveletPlacement {
  rowShift: Int32Array;
  colShift: Int32Array;
  rowHi: Int32Array;
  colHi: Int32Array;
  /** Filter length L (1 without the IDWT: the coefficient itself). */
  length: number;
}

/** The placement of coefficients at grid positions (rows, cols) of an [out, in] layer. */
export function waveletPlacement(
  locations: { rows: Int32Array; cols: Int32Array },
  out: number,
  inF: number,
  filterLength: number | null,
): WaveletPlacement {
  const n = locations.rows.length;
  const p: WaveletPlacement = {
    rowShift: new Int32Array(n),
    colShift: new Int32Array(n),
    rowHi: new Int32Array(n),
    colHi: new Int32Array(n),
    length: filterLength ?? 1,
  };
  if (filterLength === null) { // no IDWT: dW[r, q] = scaling c
    p.rowShift.set(locations.rows);
    p.colShift.set(locations.cols);
    return p;
  }
  const red = filterLength - 2;
  const even = (v: number) => v + (v % 2);
  const [h, w] = [even(out + red), even(inF + red)];
  const [h2, w2] = [h / 2, w / 2];
  const [r0, c0] = [Math.floor((h - out) / 2), Math.floor((w - inF) / 2)];
  for (let l = 0; l < n; l++) {
    const r = locations.rows[l] + r0;
    const c = locations.cols[l] + c0;
    const bottom = r >= h2;
    const right = c >= w2;
    // Transposed conv puts grid cell (i, j) at output rows 2i .. 2i + L - 1; the crop drops L - 2.
    p.rowShift[l] = 2 * (bottom ? r - h2 : r) - red;
    p.colShift[l] = 2 * (right ? c - w2 : c) - red;
    p.rowHi[l] = right ? 1 : 0; // cH = hi x lo sits top-right
    p.colHi[l] = bottom ? 1 : 0; // cV = lo x hi sits bottom-left
  }
  return p;
}

/** A frozen linear layer plus WaveFT coefficients. */
export class WaveftLinear extends AdaptedLinear {
  /** Filters [lo..., hi...] (length 2L), shifts and filter choices [1, n]. */
  readonly #table: tf.Tensor1D;
  readonly #rowShift: tf.Tensor2D;
  readonly #colShift: tf.Tensor2D;
  readonly #rowSel: tf.Tensor2D;
  readonly #colSel: tf.Tensor2D;
  readonly #length: number;

  constructor(
    base: LinearModule,
    /** The coefficients c [n]. */
    readonly spectrum: tf.Variable,
    /** Grid positions (rows, cols) of the coefficients within [out, in]. */
    readonly locations: { rows: Int32Array; cols: Int32Array },
    readonly scaling: number,
    /** Reconstruction filters, or null without the IDWT (`useIdwt=false`). */
    filters: { lo: number[]; hi: number[] } | null,
  ) {
    super(base);
    const n = locations.rows.length;
    const placement = waveletPlacement(
      locations,
      base.outFeatures,
      base.inFeatures,
      filters?.lo.length ?? null,
    );
    const L = placement.length;
    this.#length = L;
    this.#table = tf.tensor1d(filters ? [...filters.lo, ...filters.hi] : [1, 1], "float32");
    this.#rowShift = tf.tensor2d(placement.rowShift, [1, n], "int32");
    this.#colShift = tf.tensor2d(placement.colShift, [1, n], "int32");
    this.#rowSel = tf.tensor2d(placement.rowHi.map((v) => v * L), [1, n], "int32");
    this.#colSel = tf.tensor2d(placement.colHi.map((v) => v * L), [1, n], "int32");
  }

  /** B[m, l] = filter_l[m - shift_l] (0 outside the filter) for m in 0..size-1: [size, n]. */
  #basis(size: number, shift: tf.Tensor2D, sel: tf.Tensor2D): tf.Tensor2D {
    const L = this.#length;
    const k = tf.sub(tf.reshape(tf.range(0, size, 1, "int32"), [size, 1]), shift);
    const inside = tf.logicalAnd(tf.greaterEqual(k, 0), tf.less(k, L));
    // Clamped in float32: on the wasm backend ClipByValue of int32 indices gave out-of-range ones.
    const clamped = tf.cast(tf.clipByValue(tf.cast(k, "float32"), 0, L - 1), "int32");
    const taps: tf.Tensor = tf.gather(this.#table, tf.add(clamped, sel));
    return tf.where(inside, taps, tf.zerosLike(taps)) as tf.Tensor2D;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const u = this.#basis(this.outFeatures, this.#rowShift, this.#rowSel);
    const v = this.#basis(this.inFeatures, this.#colShift, this.#colSel);
    const c = tf.mul(this.spectrum, this.scaling);
    return tf.add(this.base.forward(x), tf.matMul(tf.mul(tf.matMul(x, v), c), u, false, true));
  }

  /** dW = scaling U diag(c) V^T. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const u = this.#basis(this.outFeatures, this.#rowShift, this.#rowSel);
      const v = this.#basis(this.inFeatures, this.#colShift, this.#colSel);
      return tf.matMul(tf.mul(u, tf.mul(this.spectrum, this.scaling)), v, false, true) as tf.Tensor2D;
    });
  }

  /** Free the filter and placement tensors. */
  override disposeOwned(): void {
    tf.dispose([this.#table, this.#rowShift, this.#colShift, this.#rowSel, this.#colSel]);
  }
}

/** Closed-form trainable count: the per-layer budgets summed over the targets. */
function waveftParameterCount(cfg: LlamaConfig, c: WaveftConfig): number {
  return [...waveftBudgets(targetShapes(cfg, c.targets), c).values()].reduce((s, n) => s + n, 0);
}

/** WaveFT. */
export const waveft: MethodDefinition<WaveftConfig> = {
  name: "waveft",
  description:
    "n trainable wavelet coefficients at seeded random positions, dW = scaling IDWT2 (Haar default; Bilican et al. 2025)",
  schema: waveftSchema,
  mergeable: true,
  // PEFT: waveft_spectrum [n_frequency] per layer, zero by default (init_weights True), so the
  // function is unchanged at init. No PEFT export (module doc).
  contract: {
    testOptions: { targets: "all-linear", nFrequency: 24 },
    identityAtInit: true,
    parameterCount: waveftParameterCount,
  },
  apply: (model, config, ctx) => {
    const filters = waveletFilters(config.waveletFamily); // refuses an unknown family either way
    const targets = selectTargets(model, config.targets);
    const shapes = new Map(targets.map((n) => {
      const l = model.linear(n);
      return [n, { out: l.outFeatures, in: l.inFeatures }];
    }));
    const budgets = waveftBudgets(shapes, config);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const n = budgets.get(name)!;
      const size = base.outFeatures * base.inFeatures;
      if (n > size) {
        const what = config.proportionalParameters ? `the proportional share ${n}` : `--opt nFrequency=${n}`;
        throw new Error(`waveft: ${what} exceeds out * in = ${size} of ${name}; lower nFrequency`);
      }
      const locations = frequencyLocations(n, base.outFeatures, base.inFeatures, config.randomLocSeed);
      const data = config.initWeights
        ? new Float32Array(n)
        : ctx.rng.fork(`${name}.waveft_spectrum`).normalArray(n, 0.01);
      const spectrum = trainableVariable(data, [n]);
      vars.set(`${name}.waveft_spectrum`, spectrum);
      return new WaveftLinear(base, spectrum, locations, config.scaling, config.useIdwt ? filters : null);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: undefined });
  },
};
