/**
 * The adapter-saving stage of a run (`--save-adapter`): the method's own tensors as safetensors,
 * and the Hugging Face PEFT layout (`adapter_config.json` + `adapter_model.safetensors`) where
 * the method exports one.
 * @module
 */
import { join } from "node:path";
import { writeSafetensors } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import type { AppliedMethod } from "../methods/types.ts";

/** Write the adapter's tensors under `dir` (created), each file atomically. */
export async function saveAdapter(
  dir: string,
  applied: Pick<AppliedMethod, "state" | "peftExport">,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, "adapter.safetensors"), writeSafetensors(applied.state()));
  if (applied.peftExport) {
    const { config, tensors } = applied.peftExport();
    await writeFileAtomic(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
    await writeFileAtomic(join(dir, "adapter_model.safetensors"), writeSafetensors(tensors));
  }
}
