/**
 * FourierFT (Gao et al. 2024, "Parameter-Efficient Fine-Tuning with Discrete Fourier Transform"), as
 * Hugging Face PEFT's `FourierFTConfig` / `fourierft.layer.FourierFTLinear` (PEFT 0.20).
 *
 * Formula: each adapted layer W [out, in] trains n spectral coefficients c at fixed frequency
 * locations (j_l, k_l); the update is the real part of the inverse 2D DFT of the sparse spectrum F
 * (F[j_l, k_l] = c_l, zero elsewhere), times `scaling` (PEFT `get_delta_weight`:
 * `ifft2(dense_spectrum).real * scaling`):
 *   dW[p, q] = scaling / (out in) * sum_l c_l cos(2 pi (j_l p / out + k_l q / in)).
 * The forward never builds dW: with Cin[q, l] = cos(2 pi k_l q / in), Sin (sine), Cout, Sout
 * likewise over the outputs, x dW^T = scaling / (out in) ((x Cin) c) Cout^T - ((x Sin) c) Sout^T,
 * the bases computed per step from integer phases (k_l q mod in, exact) instead of being stored.
 *
 * Initialisation, as PEFT: the locations are the first n entries of a seeded random permutation of
 * the out * in positions, from `randomLocSeed` (PEFT `random_loc_seed` 777) for every layer alike
 * (PEFT seeds each layer's generator the same way, so equal shapes share locations). PEFT draws
 * them with `torch.randperm`, which peft-bench does not reproduce: it uses its own seeded generator
 * (models/util/rng.ts), so the locations differ from PEFT's. Hence no PEFT export: PEFT saves only
 * `fourierft_spectrum` and recomputes the locations from the seed at load, so PEFT files written
 * from this run would compute another update (the run's adapter.safetensors keeps the spectrum,
 * the locations follow from the options). The spectrum starts standard
 * normal (PEFT's default `init_weights=False`, so the function changes at init) or zero with
 * `--opt initWeights=true`.
 *
 * Trainable parameters per adapted layer: n (`nFrequency`, PEFT `n_frequency` 1000; at most
 * out * in). Options: `targets` (PEFT's Llama default q_proj, v_proj), `nFrequency`, `scaling`
 * (PEFT 150), `randomLocSeed`, `initWeights`. Mergeable: W' = W + dW.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import { Rng } from "../models/util/rng.ts";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { trainableVariable, wrapLinears } from "./common.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** FourierFT options (PEFT `FourierFTConfig`, with its defaults). */
export const fourierftSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Spectral coefficients per layer (PEFT `n_frequency`). */
  nFrequency: z.number().int().positive().default(1000),
  /** The update's scale (PEFT `scaling`). */
  scaling: z.number().positive().default(150),
  /** Seed of the frequency locations (PEFT `random_loc_seed`). */
  randomLocSeed: z.number().int().nonnegative().default(777),
  /** Zero spectrum at init (PEFT `init_weights`; false: standard normal). */
  initWeights: z.boolean().default(false),
}).strict();

/** FourierFT options after defaults. */
export type FourierftConfig = z.infer<typeof fourierftSchema>;

/**
 * The first n entries of a uniformly random permutation of 0..size-1 (a partial Fisher-Yates
 * shuffle, sparse so that size may be out * in of a large layer), as (row, col) of a [rows, cols]
 * grid: PEFT's `randperm(out * in)[:n]` split into `// in` and `% in`.
 */
export function frequencyLocations(
  n: number,
  rows: number,
  cols: number,
  seed: number,
): { rows: Int32Array; cols: Int32Array } {
  const size = rows * cols;
  if (n > size) throw new Error(`fourierft: --opt nFrequency=${n} exceeds out * in = ${size}`);
  const rng = new Rng(seed);
  const moved = new Map<number, number>();
  const at = (i: number) => moved.get(i) ?? i;
  const r = new Int32Array(n);
  const c = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const z = i + rng.int(size - i);
    const picked = at(z);
    moved.set(z, at(i));
    r[i] = Math.floor(picked / cols);
    c[i] = picked % cols;
  }
  return { rows: r, cols: c };
}

/** A frozen linear layer plus a FourierFT spectrum. */
export class FourierftLinear extends AdaptedLinear {
  /** Frequency rows j_l [1, n] and columns k_l [1, n] (int32). */
  readonly #j: tf.Tensor2D;
  readonly #k: tf.Tensor2D;

  constructor(
    base: LinearModule,
    /** The spectrum c [n]. */
    readonly spectrum: tf.Variable,
    readonly locations: { rows: Int32Array; cols: Int32Array },
    readonly scaling: number,
  ) {
    super(base);
    const n = locations.rows.length;
    this.#j = tf.tensor2d(locations.rows, [1, n], "int32");
    this.#k = tf.tensor2d(locations.cols, [1, n], "int32");
  }

  /** cos and sin of 2 pi (m f mod size) / size for m in 0..size-1 and the frequencies f: [size, n] each. */
  #basis(freqs: tf.Tensor2D, size: number): [tf.Tensor2D, tf.Tensor2D] {
    const m = tf.reshape(tf.range(0, size, 1, "int32"), [size, 1]);
    // Integer phases keep the angle exact for any layer size (m f < 2^31).
    const phase = tf.mul(tf.cast(tf.mod(tf.mul(m, freqs), size), "float32"), (2 * Math.PI) / size);
    return [tf.cos(phase) as tf.Tensor2D, tf.sin(phase) as tf.Tensor2D];
  }

  #factor(): number {
    return this.scaling / (this.outFeatures * this.inFeatures);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const [cin, sin] = this.#basis(this.#k, this.inFeatures);
    const [cout, sout] = this.#basis(this.#j, this.outFeatures);
    const c = tf.mul(this.spectrum, this.#factor());
    const re = tf.matMul(tf.mul(tf.matMul(x, cin), c), cout, false, true);
    const im = tf.matMul(tf.mul(tf.matMul(x, sin), c), sout, false, true);
    return tf.add(this.base.forward(x), tf.sub(re, im));
  }

  /** dW = scaling / (out in) (Cout diag(c) Cin^T - Sout diag(c) Sin^T). */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      const [cin, sin] = this.#basis(this.#k, this.inFeatures);
      const [cout, sout] = this.#basis(this.#j, this.outFeatures);
      const c = tf.mul(this.spectrum, this.#factor());
      return tf.sub(
        tf.matMul(tf.mul(cout, c), cin, false, true),
        tf.matMul(tf.mul(sout, c), sin, false, true),
      ) as tf.Tensor2D;
    });
  }

  /** Free the location tensors. */
  override disposeOwned(): void {
    tf.dispose([this.#j, this.#k]);
  }
}

/** FourierFT. */
export const fourierft: MethodDefinition<FourierftConfig> = {
  name: "fourierft",
  description:
    "n trainable spectral coefficients at seeded random 2D frequencies, dW = scaling Re(ifft2) (Gao et al. 2024)",
  schema: fourierftSchema,
  mergeable: true,
  // PEFT: fourierft_spectrum [n_frequency] per layer, standard normal by default (init_weights
  // False), so the function changes at init; with initWeights the spectrum is zero. No PEFT
  // export (module doc).
  contract: {
    testOptions: { targets: "all-linear", nFrequency: 24, scaling: 150 },
    identityAtInit: false,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, () => c.nFrequency),
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const n = config.nFrequency;
      if (n > base.outFeatures * base.inFeatures) {
        throw new Error(
          `fourierft: --opt nFrequency=${n} exceeds out * in = ${
            base.outFeatures * base.inFeatures
          } of ${name}`,
        );
      }
      const locations = frequencyLocations(n, base.outFeatures, base.inFeatures, config.randomLocSeed);
      const data = config.initWeights
        ? new Float32Array(n)
        : ctx.rng.fork(`${name}.fourierft_spectrum`).normalArray(n);
      const spectrum = trainableVariable(data, [n]);
      vars.set(`${name}.fourierft_spectrum`, spectrum);
      return new FourierftLinear(base, spectrum, locations, config.scaling);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore, nominalRank: undefined });
  },
};
