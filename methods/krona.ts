/**
 * KronA: Kronecker adapter (Edalati et al. 2022, "KronA: Parameter Efficient Tuning with Kronecker
 * Adapter"), the parallel variant on frozen linear layers.
 *
 * Formula: y = W x + s kron(A, B) x with both factors full matrices (no low-rank part), computed
 * with the vec trick kron(A, B) x = vec(A X B^T) (X the input row as [inM, inN]) as the paper does,
 * never materialising the [out, in] update in the forward pass.
 *
 * Factor sizes: out = outL outK and in = inM inN split by the LyCORIS/PEFT `factorization` used by
 * LoKr (`decomposeFactor` -1: the divisor pair closest to sqrt, which minimises the parameter
 * count outL inM + outK inN for a square-ish split); A [outL, inM], B [outK, inN]. The paper
 * chooses factor shapes per model as a hyperparameter; closest-to-sqrt is its parameter-lean choice.
 * Trainable parameters per adapted layer: outL inM + outK inN (e.g. 16 + 16 for a 16x16 layer).
 *
 * Initialisation: A Kaiming-uniform (a = sqrt(5), like LoRA's A) and B zeros (like LoRA's B), so
 * kron(A, B) = 0 at init and the adapted model equals the frozen one (the paper zero-initialises
 * one factor for the same reason).
 *
 * Mergeable: W' = W + s kron(A, B). Option `scale` is the paper's fixed scaling factor s
 * (default 1; the paper tunes it per task); `targets` defaults to q+v like LoRA.
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { MethodDefinition } from "./types.ts";
import { selectTargets, sumOverTargets } from "./targets.ts";
import { kaimingUniform, trainableVariable, wrapLinears } from "./common.ts";
import { decomposeFactorOption, factorization, kronShape } from "./kron.ts";
import { KronLinear } from "./lokr.ts";
import { adaptedMethod } from "./wrapped.ts";

/** KronA options. */
export const kronaSchema = z.object({
  /** Target preset or pattern (see targets.ts). */
  targets: z.string().default("q+v"),
  /** Scaling factor s of the update. */
  scale: z.number().positive().default(1),
  /** Kronecker split of each dimension: -1 closest to sqrt, or the size of the first factor. */
  decomposeFactor: decomposeFactorOption,
}).strict();

/** KronA options after defaults. */
export type KronaConfig = z.infer<typeof kronaSchema>;

/** KronA. */
export const krona: MethodDefinition<KronaConfig> = {
  name: "krona",
  description: "Kronecker adapter s*kron(A, B) with full factors (Edalati et al. 2022)",
  schema: kronaSchema,
  mergeable: true,
  // Full factors A [outL, inM] and B [outK, inN] (Edalati et al. 2022).
  contract: {
    testOptions: { targets: "all-linear" },
    identityAtInit: true,
    parameterCount: (m, c) =>
      sumOverTargets(m, c.targets, (s) => {
        const [outL, outK] = factorization(s.out, c.decomposeFactor);
        const [inM, inN] = factorization(s.in, c.decomposeFactor);
        return outL * inM + outK * inN;
      }),
  },
  apply: (model, config, ctx) => {
    const vars = new Map<string, tf.Variable>();
    const { wrapped, restore } = wrapLinears(model, selectTargets(model, config.targets), (base, name) => {
      const { left, right } = kronShape(base.outFeatures, base.inFeatures, config.decomposeFactor);
      const a = trainableVariable(kaimingUniform(ctx.rng.fork(`${name}.krona_A`), left), left);
      const b = trainableVariable(new Float32Array(right[0] * right[1]), right);
      vars.set(`${name}.krona_A`, a);
      vars.set(`${name}.krona_B`, b);
      return new KronLinear(base, a, [b], config.scale);
    });
    return adaptedMethod({ model, ctx, vars, wrapped, restore });
  },
};
