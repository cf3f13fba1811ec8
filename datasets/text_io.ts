/**
 * Strict text reading for user data: invalid UTF-8 is an error naming the file and line,
 * never silently replaced with U+FFFD (which would change texts and ids unnoticed).
 * @module
 */
import { readFileOrExplain } from "../models/util/io.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

/** Decode bytes as UTF-8 (a leading BOM is dropped); throws `file:line: invalid UTF-8 ...` on bad bytes. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return strict.decode(bytes);
  } catch {
    // The decoder does not say where; find the first bad byte ourselves to name its line.
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    throw new Error(
      `${file}:${line}: invalid UTF-8 (byte 0x${
        bytes[at]?.toString(16).padStart(2, "0")
      } at offset ${at}); re-save the file as UTF-8`,
    );
  }
}

/** Index of the first byte that is not part of a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n: number, min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Read a UTF-8 text file; `what` says what the file is for, in the not-found error. */
export async function readTextFile(path: string, what: string): Promise<string> {
  return decodeUtf8(await readFileOrExplain(path, what), path);
}
