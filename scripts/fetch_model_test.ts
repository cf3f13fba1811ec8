import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { configFromHf, readHfFolder, toHfName } from "../models/hf.ts";
import { resolveModelPath } from "../models/hub_cache.ts";
import { checkModel } from "../models/load.ts";
import { LlamaModel } from "../models/llama.ts";
import { type SafeTensorInput, writeSafetensorsFile } from "../models/safetensors.ts";
import { Rng } from "../models/util/rng.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const ID = "test-org/tiny-llama";
const REPO = "models--test-org--tiny-llama";
const SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The cache name of a file, computed with WebCrypto (the code under test uses node:crypto streams). */
async function etagOf(name: string, data: Uint8Array<ArrayBuffer>): Promise<string> {
  if (name.endsWith(".safetensors")) return hex(await crypto.subtle.digest("SHA-256", data));
  // git's blob id: sha1 over "blob <size>\0" then the content.
  const head = new TextEncoder().encode(`blob ${data.length}\0`);
  const all = new Uint8Array(head.length + data.length);
  all.set(head);
  all.set(data, head.length);
  return hex(await crypto.subtle.digest("SHA-1", all));
}

/** A tiny Llama folder as a hub repo holds it: two shards and their index, plus files not taken. */
async function servedFolder(dir: string): Promise<void> {
  const hf = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    vocab_size: 4160,
    max_position_embeddings: 64,
    tie_word_embeddings: false,
  };
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hf));
  await Deno.copyFile(`${ROOT}models/default/tokenizer.json`, `${dir}/tokenizer.json`);
  await Deno.writeTextFile(`${dir}/README.md`, "not taken\n");
  await Deno.writeFile(`${dir}/pytorch_model.bin`, new Uint8Array(64));
  const rng = new Rng(5);
  const shards = [new Map<string, SafeTensorInput>(), new Map<string, SafeTensorInput>()];
  const weightMap: Record<string, string> = {};
  for (const [name, shape] of LlamaModel.parameterShapes(configFromHf(hf))) {
    const size = shape.reduce((a, b) => a * b, 1);
    const k = name.startsWith("layers.1") || name === "lm_head.weight" ? 1 : 0;
    shards[k].set(toHfName(name), { data: rng.fork(name).normalArray(size, 0.02), shape });
    weightMap[toHfName(name)] = SHARDS[k];
  }
  for (let k = 0; k < 2; k++) await writeSafetensorsFile(`${dir}/${SHARDS[k]}`, shards[k]);
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
}

interface Run {
  result?: {
    commit: string;
    snapshot: string;
    files: { rfilename: string; downloaded: number; resumedFrom: number }[];
  };
  error?: string;
  requests: { path: string; range: string | null }[];
}

/** fetchModel against the loopback hub, in a subprocess that may reach 127.0.0.1 only. */
async function fetchLoopback(
  served: string,
  cache: string,
  extra: Record<string, unknown> = {},
): Promise<Run> {
  const scenario = JSON.stringify({ served, cache, id: ID, commit: COMMIT, ...extra });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      `${ROOT}scripts/fetch_model_loopback_test_utils.ts`,
      scenario,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text);
}

/** Every path under `dir` (links not followed), sorted, with sizes of regular files. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) walk(p, `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}:${e.isSymlink ? Deno.readLinkSync(p) : Deno.statSync(p).size}`);
    }
  };
  walk(dir, "");
  return out.sort();
}

async function withDirs(fn: (served: string, cache: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await servedFolder(`${dir}/served`);
    await fn(`${dir}/served`, `${dir}/cache`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "fetch-model: a sharded revision lands in the hub cache layout, hash-named and checked; --model ORG/NAME finds it",
  ignore: !canRun,
  fn: () =>
    withDirs(async (served, cache) => {
      const run = await fetchLoopback(served, cache);
      assert.equal(run.error, undefined);
      const repo = `${cache}/${REPO}`;
      assert.equal(await Deno.readTextFile(`${repo}/refs/main`), COMMIT);
      const snapshot = `${repo}/snapshots/${COMMIT}`;
      assert.equal(run.result!.snapshot, snapshot);
      const taken = ["config.json", "model.safetensors.index.json", ...SHARDS, "tokenizer.json"].sort();
      assert.deepEqual([...Deno.readDirSync(snapshot)].map((e) => e.name).sort(), taken);
      for (const name of taken) {
        const data = await Deno.readFile(`${served}/${name}`);
        const etag = await etagOf(name, data);
        assert.equal(Deno.readLinkSync(`${snapshot}/${name}`), `../../blobs/${etag}`, name);
        assert.deepEqual(await Deno.readFile(`${snapshot}/${name}`), data, name);
      }
      assert.ok(!listing(repo).some((p) => p.includes(".incomplete")));
      // Downloads went through the hub's redirect to the CDN path.
      assert.ok(run.requests.some((r) => r.path.startsWith(`/test-org/tiny-llama/resolve/${COMMIT}/`)));
      assert.ok(run.requests.some((r) => r.path === `/cdn/${SHARDS[1]}`));

      assert.equal(resolveModelPath(ID, cache), snapshot);
      assert.equal(resolveModelPath(`${ID}@${COMMIT}`, cache), snapshot);
      await checkModel(snapshot);
      const a = await readHfFolder(snapshot);
      const b = await readHfFolder(served);
      assert.deepEqual([...a.weights.keys()].sort(), [...b.weights.keys()].sort());
      for (const [k, v] of a.weights) assert.deepEqual(v, b.weights.get(k), k);

      // The CLI loads it by id from the cache HF_HUB_CACHE names.
      const lm = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "lm", "--model", ID, "--text", "a domesticated animal", "--json"],
        cwd: ROOT,
        env: { HF_HUB_CACHE: cache, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(lm.code, 0, new TextDecoder().decode(lm.stderr));
      assert.ok(JSON.parse(new TextDecoder().decode(lm.stdout)).tokens > 0);

      // A second run finds every blob in place and downloads nothing.
      const again = await fetchLoopback(served, cache);
      assert.equal(again.error, undefined);
      assert.ok(again.result!.files.every((f) => f.downloaded === 0));
      assert.ok(!again.requests.some((r) => r.path.startsWith("/cdn/")));
    }),
});

Deno.test({
  name:
    "fetch-model: a cut download leaves no revision behind and resumes with a Range request; a server ignoring Range restarts",
  ignore: !canRun,
  fn: () =>
    withDirs(async (served, cache) => {
      const shard = SHARDS[1];
      const data = await Deno.readFile(`${served}/${shard}`);
      const etag = await etagOf(shard, data);
      const cut = await fetchLoopback(served, cache, { cut: { file: shard, bytes: 1000 } });
      assert.match(
        cut.error!,
        new RegExp(
          `^${shard}: download cut at 1000 of ${data.length} bytes .*; run the task again to resume$`,
        ),
      );
      const repo = `${cache}/${REPO}`;
      assert.equal((await Deno.stat(`${repo}/blobs/${etag}.incomplete`)).size, 1000);
      assert.ok(!listing(repo).some((p) => p.startsWith("refs/") || p.startsWith("snapshots/")));

      const resumed = await fetchLoopback(served, cache);
      assert.equal(resumed.error, undefined);
      assert.deepEqual(
        resumed.requests.filter((r) => r.path === `/cdn/${shard}`).map((r) => r.range),
        ["bytes=1000-"],
      );
      const f = resumed.result!.files.find((x) => x.rfilename === shard)!;
      assert.deepEqual([f.resumedFrom, f.downloaded], [1000, data.length - 1000]);
      assert.deepEqual(await Deno.readFile(`${repo}/snapshots/${COMMIT}/${shard}`), data);

      // Same partial file, but the server answers 200 with the whole file: written from the start.
      await Deno.remove(`${repo}/blobs/${etag}`);
      await Deno.writeFile(`${repo}/blobs/${etag}.incomplete`, data.subarray(0, 1000));
      const whole = await fetchLoopback(served, cache, { ignoreRange: true });
      assert.equal(whole.error, undefined);
      assert.equal(whole.result!.files.find((x) => x.rfilename === shard)!.downloaded, data.length);
      assert.deepEqual(await Deno.readFile(`${repo}/blobs/${etag}`), data);
    }),
});

Deno.test({
  name:
    "fetch-model: content that fails the hub's sha256, or a size the hub does not list, is one error and writes no revision",
  ignore: !canRun,
  fn: () =>
    withDirs(async (served, cache) => {
      const bad = await fetchLoopback(served, cache, { corrupt: SHARDS[0] });
      const etag = await etagOf(SHARDS[0], await Deno.readFile(`${served}/${SHARDS[0]}`));
      assert.match(
        bad.error!,
        new RegExp(`^${SHARDS[0]}: sha256 [0-9a-f]{64} is not the hub's ${etag}; removed`),
      );
      const repo = `${cache}/${REPO}`;
      const left = listing(repo);
      assert.ok(!left.some((p) => p.includes(etag)), left.join(" "));
      assert.ok(!left.some((p) => p.startsWith("refs/") || p.startsWith("snapshots/")));

      const short = await fetchLoopback(served, `${cache}2`, { sizeLie: "config.json" });
      assert.match(short.error!, /^config\.json: got \d+ of \d+ bytes; run the task again to resume$/);
      assert.ok(
        !listing(`${cache}2/${REPO}`).some((p) => p.startsWith("refs/") || p.startsWith("snapshots/")),
      );
    }),
});

Deno.test({
  name:
    "--model ORG/NAME: a missing snapshot, a missing shard blob, a truncated shard are one line each, nothing written",
  ignore: !canRun,
  fn: () =>
    withDirs(async (served, cache) => {
      assert.equal((await fetchLoopback(served, cache)).error, undefined);
      const repo = `${cache}/${REPO}`;
      const snapshot = `${repo}/snapshots/${COMMIT}`;
      assert.throws(
        () => resolveModelPath("test-org/other", cache),
        /^Error: model test-org\/other is not a path and the Hugging Face cache has no revision 'main' of it \(no .*models--test-org--other\/refs\/main\); download it with deno task fetch-model test-org\/other/,
      );
      assert.throws(() => resolveModelPath(`${ID}@v2`, cache), /no revision 'v2' of it/);
      assert.throws(
        () => resolveModelPath(`${ID}@${"f".repeat(40)}`, cache),
        /has no snapshot .*\/snapshots\/f{40}; download it/,
      );
      // A path wins over an id; a path-like text that is no id is left for the loader's error.
      assert.equal(resolveModelPath(served, cache), served);
      assert.equal(resolveModelPath("/no/such/model.bin", cache), "/no/such/model.bin");

      const before = listing(cache);
      const blob = (name: string) =>
        `${repo}/${Deno.readLinkSync(`${snapshot}/${name}`).slice("../../".length)}`;
      const data1 = await Deno.readFile(blob(SHARDS[1]));
      await Deno.remove(blob(SHARDS[1]));
      await assert.rejects(checkModel(snapshot), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`${SHARDS[1]} links to \\.\\./\\.\\./blobs/[0-9a-f]{64}, which is missing; re-download`),
        );
        assert.equal(err.message.split("\n").length, 1);
        return true;
      });
      await Deno.writeFile(blob(SHARDS[1]), data1);
      const b0 = blob(SHARDS[0]);
      await Deno.truncate(b0, (await Deno.stat(b0)).size - 100);
      await assert.rejects(checkModel(snapshot), (err: Error) => {
        assert.ok(err.message.startsWith(`${snapshot}/${SHARDS[0]}: `), err.message);
        assert.equal(err.message.split("\n").length, 1);
        return true;
      });
      const after = listing(cache).map((p) => p.startsWith(`${REPO}/blobs/${b0.split("/").pop()}:`) ? "" : p);
      assert.deepEqual(
        after,
        before.map((p) => p.startsWith(`${REPO}/blobs/${b0.split("/").pop()}:`) ? "" : p),
      );

      // The CLI: exit 2 and one line for an id the cache lacks.
      const lm = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "lm", "--model", "test-org/other", "--text", "x"],
        cwd: ROOT,
        env: { HF_HUB_CACHE: cache, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      // stderr: the backend line, then the error.
      const err = new TextDecoder().decode(lm.stderr).trim().split("\n").filter((l) =>
        !l.startsWith("backend:")
      );
      assert.equal(lm.code, 2, err.join("\n"));
      assert.equal(err.length, 1, err.join("\n"));
      assert.match(
        err[0],
        /^error: model test-org\/other is not a path and the Hugging Face cache has no revision 'main'/,
      );
    }),
});
