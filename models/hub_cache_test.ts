import assert from "node:assert/strict";
import { formatModelId, hubCacheDir, parseModelId, repoCacheDir } from "./hub_cache.ts";

Deno.test("hub cache: ORG/NAME[@REV] ids as huggingface_hub accepts them; paths and odd names are not ids", () => {
  assert.deepEqual(parseModelId("Qwen/Qwen2.5-0.5B"), {
    org: "Qwen",
    name: "Qwen2.5-0.5B",
    revision: "main",
  });
  assert.deepEqual(parseModelId("meta-llama/Llama-3.2-1B@refs/pr/3"), {
    org: "meta-llama",
    name: "Llama-3.2-1B",
    revision: "refs/pr/3",
  });
  for (
    const bad of [
      "model.bin",
      "/abs/path",
      "a/b/c",
      "a--b/c",
      "a/b..c",
      "a/b@",
      "a/b@../x",
      "./a/b",
      "a/b@x/",
    ]
  ) {
    assert.equal(parseModelId(bad), null, bad);
  }
  assert.equal(formatModelId(parseModelId("a/b@v1")!), "a/b@v1");
  assert.equal(formatModelId(parseModelId("a/b")!), "a/b");
  assert.equal(repoCacheDir(parseModelId("Qwen/Qwen3-0.6B")!, "/c"), "/c/models--Qwen--Qwen3-0.6B");
});

Deno.test("hub cache: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const all = { HF_HUB_CACHE: "/h", HF_HOME: "/home-hf", XDG_CACHE_HOME: "/xdg", HOME: "/u" };
  assert.equal(hubCacheDir(env(all)), "/h");
  assert.equal(hubCacheDir(env({ ...all, HF_HUB_CACHE: "" })), "/home-hf/hub");
  assert.equal(hubCacheDir(env({ XDG_CACHE_HOME: "/xdg", HOME: "/u" })), "/xdg/huggingface/hub");
  assert.equal(hubCacheDir(env({ HOME: "/u" })), "/u/.cache/huggingface/hub");
  assert.throws(() => hubCacheDir(env({})), /set HF_HUB_CACHE or HF_HOME/);
});
