/**
 * The plumbing of every method that adapts linear layers (the LoRA family, LoHa, LoKr, KronA,
 * GLoRA, IA3, BitFit, SAID): one base class whose subclasses give the forward, the folded update
 * dW and the merged bias; one merge; one helper building the {@link AppliedMethod} (state, loading,
 * merge, diagnostics, dispose).
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

  /** Free tensors the layer itself owns (index or permutation tables); the method's dispose calls it. */
  disposeOwned(): void {}
}

/**
 * The one merge: replace each adapted layer by a plain frozen layer (through `ctx.makeFrozenLinear`,
 * so it is stored like the run's other frozen layers) holding W + dW and, where the method changes or
 * creates a bias (`mergedBias()`), a new frozen bias variable; otherwise the base's bias.
 */
export function mergeAdapted(
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

/** What {@link adaptedMethod} needs from a method that wrapped linear layers. */
export interface AdaptedParts {
  model: LlamaModel;
  ctx: MethodContext;
  /** The method's trainable variables by state name, in optimizer order. */
  vars: Map<string, tf.Variable>;
  /** Adapted layers by layer name. */
  wrapped: Map<string, AdaptedLinear>;
  /** Put the original layers back (from `wrapLinears`). */
  restore: () => void;
  /** Frozen tensors the method owns (shared projections, snapshots), freed by dispose. */
  owned?: tf.Tensor[];
  nominalRank?: number;
  /** dW relative to the model's original weight, when it differs from `delta()` (PiSSA). */
  deltaWeights?: () => Map<string, tf.Tensor2D>;
}

/**
 * The {@link AppliedMethod} of a method built on {@link AdaptedLinear}: trains and saves `vars` by
 * name, merges with {@link mergeAdapted}, reports each layer's `delta()`; dispose frees the
 * method's tensors and each layer's own (`disposeOwned`) and puts the original layers back unless it
 * was merged (the merged layers stay).
 */
export function adaptedMethod(p: AdaptedParts): AppliedMethod {
  let merged = false;
  return {
    trainable: [...p.vars.values()],
    nominalRank: p.nominalRank,
    merge: () => {
      mergeAdapted(p.model, p.wrapped, p.ctx);
      merged = true;
    },
    state: () => stateOf(p.vars),
    loadState: (t) => loadStateInto(p.vars, t),
    deltaWeights: p.deltaWeights ?? (() => new Map([...p.wrapped].map(([n, l]) => [n, l.delta()]))),
    dispose: () => {
      if (!merged) p.restore();
      tf.dispose([...p.vars.values(), ...(p.owned ?? [])]);
      for (const l of p.wrapped.values()) l.disposeOwned();
    },
  };
}
