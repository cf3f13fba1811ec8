/**
 * Shared pieces of the methods that wrap linear layers with their own tensors (LoHa, LoKr, KronA,
 * GLoRA, IA3, BitFit): a wrapper base class, the merge that may also create or change a bias, and
 * the common {@link AppliedMethod} plumbing (state, loading, diagnostics, dispose).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { variableOf } from "../models/variables.ts";
import type { LinearModule } from "../models/linear.ts";
import type { LlamaModel } from "../models/llama.ts";
import type { AppliedMethod, MethodContext } from "./types.ts";
import { loadStateInto, stateOf } from "./common.ts";

/** A linear layer wrapping a frozen base: subclasses define the forward and the folded update. */
export abstract class AdaptedLinear implements LinearModule {
  readonly base: LinearModule;

  constructor(base: LinearModule) {
    this.base = base;
  }

  get name(): string {
    return this.base.name;
  }
  get inFeatures(): number {
    return this.base.inFeatures;
  }
  get outFeatures(): number {
    return this.base.outFeatures;
  }
  get bias(): tf.Variable | null {
    return this.base.bias;
  }

  abstract forward(x: tf.Tensor2D): tf.Tensor2D;

  denseWeight(): tf.Tensor2D {
    return this.base.denseWeight();
  }

  /** The weight update dW [out, in] the method folds into the base weight (caller disposes). */
  abstract delta(): tf.Tensor2D;

  /** The bias [out] after merging (caller disposes), or null when the base's bias stays as is. */
  mergedBias(): tf.Tensor1D | null {
    return null;
  }
}

/**
 * Replace each wrapped layer by a plain frozen layer holding W + dW and, where the method changes
 * or creates a bias, a new frozen bias variable (lora.ts's `mergeDeltas` always keeps the base bias;
 * LoHa, LoKr and KronA use that one).
 */
export function mergeWithBias(
  model: LlamaModel,
  layers: Map<string, AdaptedLinear>,
  ctx: MethodContext,
): void {
  for (const [name, layer] of layers) {
    const merged = tf.tidy(() => tf.add(layer.base.denseWeight(), layer.delta()) as tf.Tensor2D);
    const b = layer.mergedBias();
    const bias = b ? variableOf(() => b, false) : layer.base.bias;
    b?.dispose();
    model.linears.set(name, ctx.makeFrozenLinear(name, merged, bias));
    merged.dispose();
  }
}

/** What {@link wrappedMethod} needs from a method that wrapped linear layers. */
export interface WrappedParts {
  /** The method's variables by state name, in optimizer order. */
  vars: Map<string, tf.Variable>;
  /** Wrapped layers by layer name. */
  wrapped: Map<string, AdaptedLinear>;
  /** Put the original layers back (from `wrapLinears`). */
  restore: () => void;
  /** Fold into plain weights. */
  merge: () => void;
  nominalRank?: number;
}

/** The {@link AppliedMethod} of a wrapping method: state from `vars`, deltas from the layers. */
export function wrappedMethod(parts: WrappedParts): AppliedMethod {
  const { vars, wrapped, restore } = parts;
  return {
    trainable: [...vars.values()],
    nominalRank: parts.nominalRank,
    merge: parts.merge,
    state: () => stateOf(vars),
    loadState: (t) => loadStateInto(vars, t),
    deltaWeights: () => new Map([...wrapped].map(([n, l]) => [n, l.delta()])),
    dispose: () => {
      restore();
      tf.dispose([...vars.values()]);
    },
  };
}
