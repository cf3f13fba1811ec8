/**
 * The local Hugging Face hub cache, as `huggingface_hub` lays it out, so `--model ORG/NAME[@REV]`
 * finds a model downloaded by `hf download`, by transformers, or by `deno task fetch-model`:
 *
 * ```text
 * CACHE/models--ORG--NAME/refs/REV              the commit a branch or tag names (refs/main by default)
 * CACHE/models--ORG--NAME/snapshots/COMMIT/FILE  a link to ../../blobs/ETAG (or the file itself)
 * CACHE/models--ORG--NAME/blobs/ETAG             the content: sha256 of LFS files, git blob sha1 of others
 * ```
 *
 * CACHE is `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub` (huggingface_hub's constants). Resolution reads files only; nothing
 * here touches the network.
 * @module
 */
import { join } from "node:path";
import { existsSync, readFileSync, statSync } from "node:fs";
import { InputError } from "./util/args.ts";

/** A hub model id with its revision. */
export interface HubModelId {
  org: string;
  name: string;
  /** Branch, tag or commit; `main` when the id names none. */
  revision: string;
}

/** One part of a repo id: huggingface_hub's rule (letters, digits, `.`, `_`, `-`; no `--` or `..`; at most 96). */
const ID_PART = /^(?!.*(--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
/** A revision: branch, tag or commit; `/` allowed (branches such as `refs/pr/1`), never `..`. */
const REVISION = /^(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$/;
/** A full commit hash. */
export const COMMIT = /^[0-9a-f]{40}$/;

/** Parse `ORG/NAME[@REV]`; null when the text is not shaped like a hub id. */
export function parseModelId(text: string): HubModelId | null {
  const at = text.indexOf("@");
  const repo = at === -1 ? text : text.slice(0, at);
  const revision = at === -1 ? "main" : text.slice(at + 1);
  const parts = repo.split("/");
  if (parts.length !== 2 || !parts.every((p) => ID_PART.test(p)) || !REVISION.test(revision)) return null;
  if (revision.startsWith("/") || revision.endsWith("/")) return null;
  return { org: parts[0], name: parts[1], revision };
}

/** The hub cache folder from the environment (see the module doc for the order). */
export function hubCacheDir(env: (key: string) => string | undefined = (k) => Deno.env.get(k)): string {
  const hub = env("HF_HUB_CACHE");
  if (hub) return hub;
  const home = env("HF_HOME");
  if (home) return join(home, "hub");
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "huggingface", "hub");
  const user = env("HOME") ?? env("USERPROFILE");
  if (!user) throw new InputError("cannot find the Hugging Face cache: set HF_HUB_CACHE or HF_HOME");
  return join(user, ".cache", "huggingface", "hub");
}

/** The cache folder of one model repo: `CACHE/models--ORG--NAME`. */
export function repoCacheDir(id: HubModelId, cacheDir: string): string {
  return join(cacheDir, `models--${id.org}--${id.name}`);
}

/** The id as the user writes it (`ORG/NAME` or `ORG/NAME@REV`). */
export function formatModelId(id: HubModelId): string {
  return `${id.org}/${id.name}${id.revision === "main" ? "" : `@${id.revision}`}`;
}

/**
 * The snapshot folder of a cached model: the commit `refs/REV` names (or REV itself when it is a
 * commit hash) under `snapshots/`. Throws one line (InputError) naming the id, the folder looked
 * at and the fix when the cache has no such snapshot. Does not check the files in it (the model
 * loader does: a missing shard or a truncated one is its error).
 */
export function resolveHubSnapshot(id: HubModelId, cacheDir: string = hubCacheDir()): string {
  const repoDir = repoCacheDir(id, cacheDir);
  const shown = formatModelId(id);
  const fix =
    `download it with deno task fetch-model ${shown}, or point HF_HUB_CACHE at the cache that holds it`;
  let commit = id.revision;
  if (!COMMIT.test(commit)) {
    const ref = join(repoDir, "refs", id.revision);
    if (!existsSync(ref) || !statSync(ref).isFile()) {
      throw new InputError(
        `model ${shown} is not a path and the Hugging Face cache has no revision '${id.revision}' of it (no ${ref}); ${fix}`,
      );
    }
    commit = readFileSync(ref, "utf8").trim();
    if (!COMMIT.test(commit)) {
      throw new InputError(`${ref} does not hold a commit hash; the cache is damaged: ${fix}`);
    }
  }
  const snapshot = join(repoDir, "snapshots", commit);
  if (!existsSync(snapshot) || !statSync(snapshot).isDirectory()) {
    throw new InputError(
      `model ${shown} is not a path and the Hugging Face cache has no snapshot ${snapshot}; ${fix}`,
    );
  }
  return snapshot;
}

/**
 * What `--model` names, as a path: an existing file or folder as is; otherwise an `ORG/NAME[@REV]`
 * hub id is looked up in the local hub cache ({@link resolveHubSnapshot}); anything else is returned
 * unchanged for the loader's "model not found". A path always wins over an id of the same spelling.
 */
export function resolveModelPath(model: string, cacheDir?: string): string {
  if (existsSync(model)) return model;
  const id = parseModelId(model);
  return id ? resolveHubSnapshot(id, cacheDir ?? hubCacheDir()) : model;
}
