/**
 * C3A, circular convolution adaptation (Chen et al., 2024, "Parameter-Efficient Fine-Tuning via
 * Circular Convolution"), as Hugging Face PEFT's `c3a` (`C3ALinear`, `BlockCircularConvolution`).
 *
 * Formula: with block size b (`blockSize`, PEFT `block_size`, dividing in and out) and a kernel
 * w [out/b, in/b, b] (`c3a_kernel`), the update is block-circulant, divided by in_features:
 *   y = W x + (1/in) sum_n C(w[m, n]) x_n   for each output block m,
 * where x_n is the n-th b-block of x and PEFT computes C(w) x = fft(ifft(x) * fft(w)).real, which
 * works out to y[s] = sum_u w[u] x[(s + u) mod b], i.e. C(w)[s, t] = w[(t - s) mod b]. Here the
 * dense dW [out, in] is gathered from the kernel by that index (exact, no FFT) and applied as
 * x dW^T; merge folds the same dW (PEFT's `get_circulant_fast` / in_features).
 *
 * Initialisation (PEFT `init_weights`, default `xavier_uniform`, so C3A is NOT the identity at init
 * by PEFT's default): xavier_uniform U(-a, a), a = sqrt(3) sqrt(2 / (in + out)); kaiming_uniform
 * U(-1/sqrt(in), 1/sqrt(in)); gaussian N(0, 1); zeros (PEFT's `True`: identity at init). Draws from
 * ctx.rng.fork(`${layer}.c3a_kernel`).
 *
 * Trainable parameters per adapted layer: (out/b)(in/b) b = out in / b. Defaults: PEFT's block_size
 * 256 (which must divide every target's sizes: PEFT's advice is their gcd, e.g. `--opt blockSize=64`
 * on the embedded model) and its Llama targets q_proj, v_proj. Mergeable.
 * PEFT export: `c3a_kernel` [out/b, in/b, b] per layer with `block_size`, `init_weights`, bias none.
 * The Hugging Face checkpoint of an interleaved-RoPE (llama2.c) model permutes q/k output rows,
 * which breaks the circulant blocks: that export is refused for q/k targets there.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { LinearModule } from "../models/linear.ts";
import type { MethodDefinition, NamedArray } from "./types.ts";
import { selectTargets, sumOverTargets, targetShapes } from "./targets.ts";
import { namedArray, peftModuleName, trainableVariable, wrapLinears } from "./common.ts";
import { peftTargetFields, permutedInHf } from "./peft_export.ts";
import { AdaptedLinear, adaptedMethod } from "./wrapped.ts";

/** C3A options (PEFT `C3AConfig`, with its defaults). */
export const c3aSchema = z.object({
  /** Target preset or pattern (PEFT's Llama default: q_proj, v_proj). */
  targets: z.string().default("q+v"),
  /** Circulant block size b, dividing every target's in and out (PEFT `block_size`). */
  blockSize: z.number().int().positive().default(256),
  /** Kernel init (PEFT `init_weights`; `zeros` is PEFT's `True`, the identity at init). */
  init: z.enum(["xavier_uniform", "kaiming_uniform", "gaussian", "zeros"]).default("xavier_uniform"),
}).strict();

/** C3A options after defaults. */
export type C3aConfig = z.infer<typeof c3aSchema>;

/**
 * For dW [out, in] of block size b: the flat kernel index feeding each entry, row-major, so that
 * dW[o, i] = w[o / b, i / b, (i - o) mod b] (w flattened [out/b, in/b, b]).
 */
export function circulantIndex(out: number, inF: number, b: number): Int32Array {
  const idx = new Int32Array(out * inF);
  const n = inF / b;
  for (let o = 0; o < out; o++) {
    const [m, s] = [Math.floor(o / b), o % b];
    for (let i = 0; i < inF; i++) {
      idx[o * inF + i] = (m * n + Math.floor(i / b)) * b + (((i % b) - s + b) % b);
    }
  }
  return idx;
}

/** A linear layer with a block-circulant update. */
export class C3aLinear extends AdaptedLinear {
  readonly kernel: tf.Variable;
  readonly #index: tf.Tensor1D;

  constructor(base: LinearModule, kernel: tf.Variable, blockSize: number) {
    super(base);
    this.kernel = kernel;
    this.#index = tf.tensor1d(circulantIndex(base.outFeatures, base.inFeatures, blockSize), "int32");
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() =>
      tf.add(this.base.forward(x), tf.matMul(x, this.delta(), false, true)) as tf.Tensor2D
    );
  }

  /** dW = blockCirculant(w) / in (PEFT `get_delta_weight`). */
  delta(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.reshape(
        tf.div(tf.gather(tf.reshape(this.kernel, [-1]), this.#index), this.inFeatures),
        [this.outFeatures, this.inFeatures],
      ) as tf.Tensor2D
    );
  }

  /** Free the index tensor. */
  override disposeOwned(): void {
    this.#index.dispose();
  }
}

/** C3A. */
export const c3a: MethodDefinition<C3aConfig> = {
  name: "c3a",
  description:
    "block-circulant update (circular convolution) of block size b, dW / in (Chen et al. 2024; PEFT C3A)",
  schema: c3aSchema,
  mergeable: true,
  contract: {
    testOptions: { targets: "all-linear", blockSize: 8 },
    identityAtInit: false,
    parameterCount: (m, c) => sumOverTargets(m, c.targets, (s) => (s.out * s.in) / c.blockSize),
    peftTensors: (m, c) => {
      const out = new Map<string, number[]>();
      for (const [name, s] of targetShapes(m, c.targets)) {
        out.set(`${name}.c3a_kernel`, [s.out / c.blockSize, s.in / c.blockSize, c.blockSize]);
      }
      return out;
    },
  },
  apply: (model, config, ctx) => {
    const targets = selectTargets(model, config.targets);
    const b = config.blockSize;
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, targets, (base, name) => {
      const { inFeatures: inF, outFeatures: out } = base;
      if (inF % b !== 0 || out % b !== 0) {
        throw new Error(
          `c3a: --opt blockSize=${b} must divide ${name}'s input ${inF} and output ${out} sizes (PEFT advises their gcd)`,
        );
      }
      const size = (out / b) * (inF / b) * b;
      const rng = ctx.rng.fork(`${name}.c3a_kernel`);
      const a = Math.sqrt(3) * Math.sqrt(2 / (inF + out));
      const init = config.init === "zeros"
        ? new Float32Array(size)
        : config.init === "gaussian"
        ? rng.normalArray(size, 1)
        : config.init === "kaiming_uniform"
        ? rng.uniformArray(size, -1 / Math.sqrt(inF), 1 / Math.sqrt(inF))
        : rng.uniformArray(size, -a, a);
      const kernel = trainableVariable(init, [out / b, inF / b, b]);
      vars.set(`${name}.c3a_kernel`, kernel);
      return new C3aLinear(base, kernel, b);
    });
    const applied = adaptedMethod({ model, ctx, vars, wrapped, restore });
    return {
      ...applied,
      peftExport: () => {
        const tensors = new Map<string, NamedArray>();
        for (const [name, l] of wrapped) {
          tensors.set(`${peftModuleName(name)}.c3a_kernel`, namedArray(l.kernel));
        }
        return {
          // Permuting q/k output rows (interleaved-RoPE checkpoints) breaks the circulant blocks.
          refused: targets.some((t) => permutedInHf(t, model.config))
            ? "c3a on q/k of an interleaved-RoPE (llama2.c) model has no PEFT layout on the converted base; use --targets without q,k"
            : undefined,
          config: {
            peft_type: "C3A",
            task_type: "CAUSAL_LM",
            block_size: b,
            block_size_pattern: {},
            init_weights: config.init === "zeros" ? true : config.init,
            bias: "none",
            ...peftTargetFields(targets, model.config.nLayers),
            base_model_name_or_path: null,
          },
          tensors,
        };
      },
    };
  },
};
