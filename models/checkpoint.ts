/**
 * Activation checkpointing (gradient checkpointing, Chen et al. 2016 "Training Deep Nets with
 * Sublinear Memory Cost"): a block's forward pass keeps only its input for the backward pass, and
 * the backward pass recomputes the block's forward under a fresh gradient tape to backpropagate
 * through it. With one block per decoder layer, the activations held between the forward and the
 * backward pass are one [tokens, dim] input per layer plus one layer's intermediates at a time,
 * instead of every layer's intermediates (attention scores [B, H, T, T], MLP [tokens, hidden]).
 *
 * tfjs has no checkpointing of its own; this is a `tf.customGrad` whose inputs are the block input
 * and every trainable variable the block reads, so the outer tape routes each variable's gradient
 * through it. Which variables a block reads is found once per block (and again whenever the set of
 * trainable variables changes) by running the block with the tape on and reading the inputs of the
 * tape nodes it adds, which are then removed. That, and running the recompute's own tape while the
 * outer backward pass is in progress, use two internals of tfjs-core's engine (4.22): `isTapeOn()`
 * and `state.activeTape`. The recompute is the same ops on the same values, so values and
 * gradients equal the plain pass (checked in `checkpoint_test.ts`).
 *
 * The block must be a deterministic function of its input, its saved tensors and variables (no
 * random draws), and its side effects run again in the probe and the recompute: callers pass
 * `observe = false` there to skip observers (attention-probability hooks).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** A tape node as tfjs-core's engine records it (the fields read here). */
interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The engine internals this module relies on (tfjs-core 4.22 `engine.js`). */
interface EngineInternals {
  isTapeOn(): boolean;
  state: { activeTape: TapeNode[] | null };
  registeredVariables: Record<string, tf.Variable>;
}

const engine = () => tf.engine() as unknown as EngineInternals;

/**
 * A block y = f(x) for checkpointing: `aux` are tensors it reads that need no gradient (masks),
 * saved for the recompute; `observe` is false in the probe and the recompute.
 */
export type CheckpointBlock = (x: tf.Tensor2D, aux: tf.Tensor[], observe: boolean) => tf.Tensor2D;

/** The trainable variables a block reads, with the variable set they were found under. */
export interface CheckpointVars {
  /** Ids of every trainable variable registered when the probe ran. */
  signature: string;
  /** The trainable variables the block reads. */
  vars: tf.Variable[];
}

/** Ids of the trainable variables now registered (a change means the probe must run again). */
function trainableSignature(): string {
  return Object.values(engine().registeredVariables).filter((v) => v.trainable).map((v) => v.id).join(",");
}

/** Run the block with the tape on, collect the trainable variables its tape nodes read, and drop those nodes. */
function probeVariables(block: CheckpointBlock, x: tf.Tensor2D, aux: tf.Tensor[]): tf.Variable[] {
  const tape = engine().state.activeTape!;
  const start = tape.length;
  const found = new Set<tf.Variable>();
  try {
    tf.tidy(() => {
      block(x, aux, false);
    });
  } finally {
    for (const node of tape.splice(start)) {
      for (const t of Object.values(node.inputs)) if (t instanceof tf.Variable && t.trainable) found.add(t);
      // Tensors a node saved for its gradient are kept outside every scope: free them here.
      for (const s of node.saved ?? []) s.dispose();
    }
  }
  return [...found];
}

/**
 * y = block(x, aux) with activation checkpointing when a gradient tape is recording (else the
 * plain call). `cache` holds the variables found for this block by an earlier call (pass the
 * returned one next time); the probe runs when it is absent or the trainable variables changed.
 */
export function checkpointed(
  block: CheckpointBlock,
  x: tf.Tensor2D,
  aux: tf.Tensor[],
  cache: CheckpointVars | undefined,
): { y: tf.Tensor2D; cache: CheckpointVars | undefined } {
  const e = engine();
  if (!e.isTapeOn()) return { y: block(x, aux, true), cache };
  const signature = trainableSignature();
  const found = cache?.signature === signature ? cache : { signature, vars: probeVariables(block, x, aux) };
  const vars = found.vars;
  const f = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const input = args[0] as tf.Tensor2D;
      save([input, ...aux]);
      return {
        value: block(input, aux, true),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, ...auxs] = saved;
          // tfjs' gradients() starts a new tape when none is recording (the outer backward pass is
          // running, its forward tape closed) and sets `activeTape` to null when done; the outer
          // pass still needs its tape afterwards (it frees the saved tensors through it).
          const outer = e.state.activeTape;
          try {
            const { value, grads } = tf.engine().gradients(
              () => block(xs as tf.Tensor2D, auxs, false),
              [xs, ...vars],
              dy,
              true,
            );
            value.dispose();
            return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? xs : vars[i - 1]));
          } finally {
            e.state.activeTape = outer;
          }
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as (...inputs: tf.Tensor[]) => tf.Tensor2D;
  return { y: f(x, ...vars), cache: found };
}
