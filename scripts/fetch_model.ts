/**
 * `deno task fetch-model ORG/NAME[@REV]`: the one opt-in download of model weights. It asks the
 * Hugging Face hub API which commit REV (default `main`) names and what its files are
 * (`/api/models/ORG/NAME/revision/REV?blobs=true`: size, git blob id, LFS sha256), downloads
 * `config.json`, the tokenizer files and the safetensors weights (`model.safetensors`, or the index
 * and every shard it names) from `/ORG/NAME/resolve/COMMIT/FILE` into the local hub cache layout
 * `huggingface_hub` uses (see `models/hub_cache.ts`), so `--model ORG/NAME[@REV]` then loads it.
 *
 * - Resumable: a file arrives in `blobs/ETAG.incomplete` (huggingface_hub's name); a rerun asks for
 *   the rest with an HTTP Range request, and starts over when the server ignores it.
 * - Checked: the size and hash the hub publishes (sha256 of LFS files, git blob sha1 of the others)
 *   before the blob takes its final name; a mismatch removes the download and fails.
 * - Atomic: blobs are renamed into place after the check, snapshot links are swapped in by rename,
 *   and `refs/REV` is written last, so a failed run never leaves a revision that looks complete.
 *
 * The task may reach only the hub and the storage/CDN hosts its downloads redirect to
 * ({@link HUB_HOSTS}); nothing else in peft-bench touches the network.
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { writeFileAtomic } from "../models/util/io.ts";
import {
  COMMIT,
  formatModelId,
  hubCacheDir,
  type HubModelId,
  parseModelId,
  repoCacheDir,
} from "../models/hub_cache.ts";

/** The hub the task downloads from. */
export const HUB_URL = "https://huggingface.co";

/**
 * Hosts the task's `--allow-net` names: the hub (API, metadata, the redirects of `resolve/`) and
 * the download hosts those redirects lead to, as the hub's documentation lists them for a firewall
 * allowlist ("Downloading behind a proxy or firewall", hub-docs `docs/hub/models-downloading.md`):
 * Xet storage downloads (US, EU), CDN edges and LFS CDNs. The Xet protocol/upload hosts
 * (`cas-server.*`) are left out: a plain HTTP download never calls them.
 */
export const HUB_HOSTS = [
  "huggingface.co",
  "transfer.xethub.hf.co",
  "transfer.xethub-eu.hf.co",
  "us.aws.cdn.hf.co",
  "us.gcp.cdn.hf.co",
  "cdn-lfs-us-1.hf.co",
  "cdn-lfs-eu-1.hf.co",
] as const;

/** Small files taken when the repo has them (config.json is required). */
const META_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/** One file of a repo revision as the hub API lists it. */
export interface HubFile {
  rfilename: string;
  size: number;
  /** Name of the blob in the cache: the LFS sha256, or the git blob sha1. */
  etag: string;
  /** Which hash `etag` is. */
  hash: "sha256" | "git-sha1";
}

/** Options of {@link fetchModel}. */
export interface FetchModelOptions {
  /** Hub base URL (the task fixes it to {@link HUB_URL}; tests serve a loopback copy). */
  baseUrl: string;
  id: HubModelId;
  /** Hub cache folder (default from the environment, as `--model` resolves). */
  cacheDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link fetchModel} did. */
export interface FetchModelResult {
  commit: string;
  snapshot: string;
  files: { rfilename: string; size: number; downloaded: number; resumedFrom: number }[];
}

const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

/** The revision's commit and files from the hub API, checked. */
export async function revisionInfo(
  baseUrl: string,
  id: HubModelId,
): Promise<{ commit: string; files: Map<string, HubFile> }> {
  const url = `${baseUrl}/api/models/${id.org}/${id.name}/revision/${
    encodeURIComponent(id.revision)
  }?blobs=true`;
  const res = await fetch(url);
  if (!res.ok) {
    await res.body?.cancel();
    const why = res.status === 401 || res.status === 404
      ? "no such model or revision, or a gated/private one (this task sends no token)"
      : `HTTP ${res.status}`;
    throw new InputError(`${formatModelId(id)}: ${why} (${url})`);
  }
  const info = await res.json() as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== "string" || !COMMIT.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new Error(`${url}: the answer has no commit sha or file list`);
  }
  const files = new Map<string, HubFile>();
  for (const s of info.siblings as Record<string, unknown>[]) {
    const name = s.rfilename;
    if (typeof name !== "string") continue;
    const lfs = s.lfs as { sha256?: unknown; size?: unknown } | undefined;
    if (
      lfs && typeof lfs.sha256 === "string" && /^[0-9a-f]{64}$/.test(lfs.sha256) &&
      typeof lfs.size === "number"
    ) {
      files.set(name, { rfilename: name, size: lfs.size, etag: lfs.sha256, hash: "sha256" });
    } else if (
      typeof s.blobId === "string" && /^[0-9a-f]{40}$/.test(s.blobId) && typeof s.size === "number"
    ) {
      files.set(name, { rfilename: name, size: s.size, etag: s.blobId, hash: "git-sha1" });
    }
  }
  return { commit: info.sha, files };
}

/** Hex digest of a file: sha256, or git's blob id (sha1 of `blob SIZE\0` + content). */
export async function fileDigest(path: string, hash: HubFile["hash"]): Promise<string> {
  const size = (await Deno.stat(path)).size;
  const h = hash === "sha256" ? createHash("sha256") : createHash("sha1").update(`blob ${size}\0`);
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(1 << 22);
    for (let n = await file.read(buf); n !== null; n = await file.read(buf)) h.update(buf.subarray(0, n));
  } finally {
    file.close();
  }
  return h.digest("hex");
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Download one file into `blobs/ETAG` (through `ETAG.incomplete`, resumed with a Range request),
 * check its size and hash, and rename it into place. Returns the bytes fetched and where it resumed.
 */
async function downloadBlob(
  url: string,
  blobs: string,
  f: HubFile,
): Promise<{ downloaded: number; resumedFrom: number }> {
  const blob = join(blobs, f.etag);
  if ((await sizeOf(blob)) === f.size) return { downloaded: 0, resumedFrom: 0 };
  await Deno.mkdir(blobs, { recursive: true });
  const part = `${blob}.incomplete`;
  let have = (await sizeOf(part)) ?? 0;
  if (have > f.size) have = 0;
  const resumedFrom = have;
  let downloaded = 0;
  if (have < f.size) {
    const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
    const ranged = res.status === 206 &&
      (res.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`);
    if (!ranged && res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`${f.rfilename}: HTTP ${res.status} from ${url}`);
    }
    if (!ranged) have = 0; // the server sent the whole file
    const file = await Deno.open(part, { write: true, create: true, truncate: !ranged, append: ranged });
    try {
      for await (const chunk of res.body!) {
        if (have + chunk.length > f.size) {
          throw new Error(
            `${f.rfilename}: the server sent more than the ${f.size} bytes the hub lists; run again`,
          );
        }
        for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
        have += chunk.length;
        downloaded += chunk.length;
      }
    } catch (err) {
      const message = (err as Error).message;
      if (message.startsWith(`${f.rfilename}:`)) throw err;
      // A dropped connection: what arrived stays in .incomplete for the next run's Range request.
      throw new Error(
        `${f.rfilename}: download cut at ${have} of ${f.size} bytes (${
          message.split("\n")[0]
        }); run the task again to resume`,
      );
    } finally {
      file.close();
    }
  }
  if (have !== f.size) {
    throw new Error(`${f.rfilename}: got ${have} of ${f.size} bytes; run the task again to resume`);
  }
  const digest = await fileDigest(part, f.hash);
  if (digest !== f.etag) {
    await Deno.remove(part);
    throw new Error(
      `${f.rfilename}: ${f.hash} ${digest} is not the hub's ${f.etag}; removed the download, run the task again`,
    );
  }
  await Deno.rename(part, blob);
  return { downloaded, resumedFrom };
}

/** Point `snapshots/COMMIT/NAME` at `../../blobs/ETAG`, replacing any old entry by rename. */
async function linkSnapshot(snapshot: string, f: HubFile): Promise<void> {
  await Deno.mkdir(snapshot, { recursive: true });
  const link = join(snapshot, f.rfilename);
  const tmp = `${link}.${Deno.pid}.tmp`;
  await Deno.remove(tmp).catch(() => {});
  await Deno.symlink(join("..", "..", "blobs", f.etag), tmp);
  await Deno.rename(tmp, link);
}

/** Which files to take: config, tokenizer files, and the safetensors weights (index and its shards). */
async function chooseFiles(
  files: Map<string, HubFile>,
  id: HubModelId,
  fetchIndex: (f: HubFile) => Promise<string>,
): Promise<HubFile[]> {
  const shown = formatModelId(id);
  if (!files.has("config.json")) {
    throw new InputError(`${shown} has no config.json; not a transformers model`);
  }
  const chosen = META_FILES.filter((n) => files.has(n)).map((n) => files.get(n)!);
  const index = files.get("model.safetensors.index.json");
  if (index) {
    let map: unknown;
    try {
      map = JSON.parse(await fetchIndex(index)).weight_map;
    } catch {
      throw new Error(`${shown}: model.safetensors.index.json is not JSON`);
    }
    if (!map || typeof map !== "object") {
      throw new Error(`${shown}: model.safetensors.index.json has no weight_map`);
    }
    const shards = [...new Set(Object.values(map as Record<string, unknown>))].sort();
    for (const s of shards) {
      if (typeof s !== "string" || !SAFE_FILE.test(s) || !files.has(s)) {
        throw new Error(
          `${shown}: the index names shard ${JSON.stringify(s)}, which the revision does not hold`,
        );
      }
    }
    chosen.push(index, ...shards.map((s) => files.get(s as string)!));
  } else if (files.has("model.safetensors")) {
    chosen.push(files.get("model.safetensors")!);
  } else {
    throw new InputError(
      `${shown} has no model.safetensors or model.safetensors.index.json; peft-bench reads safetensors weights only`,
    );
  }
  return chosen;
}

/**
 * Download a model revision into the hub cache (see the module doc). Throws one line on a missing
 * model, a file whose size or hash differs from the hub's, or a download cut short (rerun resumes).
 */
export async function fetchModel(options: FetchModelOptions): Promise<FetchModelResult> {
  const { baseUrl, id } = options;
  const log = options.log ?? (() => {});
  const repoDir = repoCacheDir(id, options.cacheDir ?? hubCacheDir());
  const blobs = join(repoDir, "blobs");
  const { commit, files } = await revisionInfo(baseUrl, id);
  const urlOf = (f: HubFile) =>
    `${baseUrl}/${id.org}/${id.name}/resolve/${commit}/${encodeURIComponent(f.rfilename)}`;
  const report: FetchModelResult["files"] = [];
  const take = async (f: HubFile) => {
    if (!SAFE_FILE.test(f.rfilename)) throw new Error(`refusing file name ${JSON.stringify(f.rfilename)}`);
    log(`${f.rfilename}: ${f.size.toLocaleString("en-US")} bytes`);
    const r = await downloadBlob(urlOf(f), blobs, f);
    report.push({ rfilename: f.rfilename, size: f.size, ...r });
  };
  const chosen = await chooseFiles(files, id, async (index) => {
    await take(index);
    return await Deno.readTextFile(join(blobs, index.etag));
  });
  for (const f of chosen) if (!report.some((r) => r.rfilename === f.rfilename)) await take(f);
  const snapshot = join(repoDir, "snapshots", commit);
  for (const f of chosen) await linkSnapshot(snapshot, f);
  // Written last: until now the revision name does not lead to a partial snapshot.
  if (id.revision !== commit) await writeFileAtomic(join(repoDir, "refs", id.revision), commit);
  return { commit, snapshot, files: report };
}

const SPEC = {
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

const USAGE =
  "deno task fetch-model ORG/NAME[@REVISION]   (into HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)";

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values, positionals } = parseCli(Deno.args, SPEC, true);
    if (values.help) return console.log(helpText(USAGE, SPEC));
    const id = positionals.length === 1 ? parseModelId(positionals[0]) : null;
    if (!id) throw new UsageError(`name one model as ORG/NAME or ORG/NAME@REVISION (${USAGE})`);
    const cacheDir = hubCacheDir();
    startWork();
    try {
      const r = await fetchModel({ baseUrl: HUB_URL, id, cacheDir, log: (l) => console.error(l) });
      const got = r.files.reduce((s, f) => s + f.downloaded, 0);
      console.log(
        `${formatModelId(id)} at ${r.commit}: ${r.snapshot} (${
          got.toLocaleString("en-US")
        } bytes downloaded)`,
      );
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) {
        const host = /"([^"]+)"/.exec((err as Error).message)?.[1] ?? "a host";
        throw new Error(
          `the hub redirected the download to ${host}, which this task may not reach (--allow-net in deno.json lists ${
            HUB_HOSTS.join(", ")
          }); add the host there if the hub's documentation lists it`,
        );
      }
      throw err;
    }
  });
}
