/**
 * The data stage of a run: load its dataset and bind the task (encoding, head, loss, evaluation)
 * to the loaded model.
 * @module
 */
import type { LoadedModel } from "../models/load.ts";
import type { Rng } from "../models/util/rng.ts";
import { loadDataset } from "../datasets/registry.ts";
import type { Dataset } from "../datasets/types.ts";
import type { RunConfig } from "./record.ts";
import { datasetSpec } from "./run_resolve.ts";
import type { TaskRunner } from "./tasks/types.ts";
import { classifyTask } from "./tasks/classify.ts";
import { retrieveTask } from "./tasks/retrieve.ts";
import { lmTask } from "./tasks/lm.ts";

/** Load a run's dataset (see {@link datasetSpec}). */
export function loadRunDataset(config: RunConfig): Promise<Dataset> {
  return loadDataset(datasetSpec(config));
}

/** The run's task on a loaded model and dataset (throws when the dataset does not serve the config's task). */
export function buildTask(loaded: LoadedModel, config: RunConfig, data: Dataset, rng: Rng): TaskRunner {
  const { model, tokenizer } = loaded;
  if (data.task !== config.task) {
    throw new Error(
      `dataset ${config.dataset} serves task '${data.task}', not '${config.task}'; use --task ${data.task}`,
    );
  }
  if (data.task === "classify") {
    return classifyTask(
      model,
      tokenizer,
      data,
      { maxLength: config.maxLength, pooling: config.pooling, maxEvalMode: config.maxEvalMode ?? "first" },
      rng,
    );
  }
  if (data.task === "retrieve") {
    return retrieveTask(model, tokenizer, data, {
      maxLength: config.maxLength,
      pooling: config.pooling,
      temperature: config.temperature,
      maxCorpus: config.maxCorpus,
    }, rng);
  }
  return lmTask(model, tokenizer, data, { maxLength: config.maxLength });
}
