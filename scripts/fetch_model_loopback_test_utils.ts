/**
 * Test utility (run as a subprocess with `--allow-net=127.0.0.1`; the test task has no network
 * permission): serves a folder on 127.0.0.1 the way the Hugging Face hub serves a model revision,
 * runs {@link fetchModel} against it once, and prints `{ result | error, requests }` as JSON.
 *
 * - `GET /api/models/ORG/NAME/revision/REV?blobs=true`: the commit and the file list, `.safetensors`
 *   files as LFS (`lfs.sha256`, `lfs.size`), others with their git blob id (`blobId`), as the hub API.
 * - `GET /ORG/NAME/resolve/COMMIT/FILE`: a 302 to `/cdn/FILE` (absolute), as the hub's redirects to
 *   its CDN; `/cdn/FILE` honours `Range: bytes=N-` with a 206 unless told to ignore it.
 *
 * argv[0]: JSON `{ served, cache, id, commit, ignoreRange?, corrupt?, cut?: { file, bytes }, sizeLie? }`.
 * @module
 */
import { createHash } from "node:crypto";
import { fetchModel } from "./fetch_model.ts";
import { parseModelId } from "../models/hub_cache.ts";

interface Scenario {
  served: string;
  cache: string;
  id: string;
  commit: string;
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean;
  /** Flip one byte of this file as served. */
  corrupt?: string;
  /** Send only the first `bytes` of `file`, then fail the connection. */
  cut?: { file: string; bytes: number };
  /** List this file 10 bytes longer in the API than it is. */
  sizeLie?: string;
}

const sc: Scenario = JSON.parse(Deno.args[0]);
const requests: { path: string; range: string | null }[] = [];
const names = [...Deno.readDirSync(sc.served)].map((e) => e.name).sort();
const contents = new Map(names.map((n) => [n, Deno.readFileSync(`${sc.served}/${n}`)]));

function siblings() {
  return names.map((n) => {
    const data = contents.get(n)!;
    const size = data.length + (sc.sizeLie === n ? 10 : 0);
    if (n.endsWith(".safetensors")) {
      return {
        rfilename: n,
        size: 134,
        lfs: { sha256: createHash("sha256").update(data).digest("hex"), size },
      };
    }
    const blobId = createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
    return { rfilename: n, size, blobId };
  });
}

const [org, name] = sc.id.split("@")[0].split("/");
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  const url = new URL(req.url);
  requests.push({ path: url.pathname, range: req.headers.get("range") });
  if (url.pathname.startsWith(`/api/models/${org}/${name}/revision/`)) {
    return Response.json({ id: `${org}/${name}`, sha: sc.commit, siblings: siblings() });
  }
  const resolve = new RegExp(`^/${org}/${name}/resolve/${sc.commit}/(.+)$`).exec(url.pathname);
  if (resolve) return Response.redirect(`${url.origin}/cdn/${resolve[1]}`, 302);
  const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
  const file = cdn && contents.get(decodeURIComponent(cdn[1]));
  if (!cdn || !file) return new Response("not found", { status: 404 });
  const fname = decodeURIComponent(cdn[1]);
  let data = file;
  if (sc.corrupt === fname) {
    data = file.slice();
    data[data.length >> 1] ^= 0xff;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
  let start = 0;
  let status = 200;
  const headers: Record<string, string> = {};
  if (range && !sc.ignoreRange) {
    start = Number(range[1]);
    status = 206;
    headers["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
  }
  const body = data.subarray(start);
  if (sc.cut?.file === fname) {
    const head = body.subarray(0, sc.cut.bytes);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(head);
        // Fails the response after the first bytes, as a dropped connection does.
        setTimeout(() => c.error(new Error("cut")), 50);
      },
    });
    return new Response(stream, { status, headers: { ...headers, "content-length": String(body.length) } });
  }
  return new Response(body, { status, headers });
});

let out: Record<string, unknown>;
try {
  const result = await fetchModel({
    baseUrl: `http://127.0.0.1:${server.addr.port}`,
    id: parseModelId(sc.id)!,
    cacheDir: sc.cache,
  });
  out = { result };
} catch (err) {
  out = { error: (err as Error).message };
}
console.log(JSON.stringify({ ...out, requests }));
await server.shutdown();
