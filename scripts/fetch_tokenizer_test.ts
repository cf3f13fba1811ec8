import assert from "node:assert/strict";
import { sha512Base64, tarMember } from "./fetch_tokenizer.ts";

Deno.test("fetch-tokenizer: SHA-512 in npm's integrity form (OpenSSL's digest of 'abc')", async () => {
  // printf abc | openssl dgst -sha512 -binary | base64
  assert.equal(
    await sha512Base64(new TextEncoder().encode("abc")),
    "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
  );
});

Deno.test("fetch-tokenizer: a member of a tar archive written by GNU tar (ustar, long names in the prefix)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const deep = `package/${"d".repeat(90)}/models`;
    await Deno.mkdir(`${dir}/${deep}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/package/readme.md`, "x".repeat(700)); // two data blocks before the target
    await Deno.writeTextFile(`${dir}/${deep}/tokenizer.json`, '{"model":{}}');
    const tar = await new Deno.Command("tar", {
      args: ["--format=ustar", "-C", dir, "-cf", "-", "package/readme.md", `${deep}/tokenizer.json`],
      stdout: "piped",
    }).output();
    assert.equal(tar.code, 0);
    const got = tarMember(tar.stdout, `${deep}/tokenizer.json`);
    assert.equal(new TextDecoder().decode(got!), '{"model":{}}');
    assert.equal(new TextDecoder().decode(tarMember(tar.stdout, "package/readme.md")!), "x".repeat(700));
    assert.equal(tarMember(tar.stdout, "package/missing.json"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch-tokenizer CLI: bad names and outputs are one-line errors before any download", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env=PEFT_BENCH_DEBUG",
        new URL("./fetch_tokenizer.ts", import.meta.url).pathname,
        ...args,
      ],
      stderr: "piped",
      stdout: "piped",
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr) };
  };
  for (
    const [args, pattern] of [
      [["gpt2", "--out", "/tmp/t.json"], /name one tokenizer: qwen3 or llama3/],
      [["qwen3"], /--out FILE is required/],
      [["qwen3", "--out", "/nonexistent-folder/t.json"], /folder \/nonexistent-folder does not exist/],
      [["qwen3", "--out", "/tmp"], /is a folder; give a file path/],
    ] as const
  ) {
    const { code, err } = await run([...args]);
    assert.equal(code, 2, err);
    assert.match(err, pattern);
    assert.equal(err.trim().split("\n").length, 1, err);
  }
});
