/**
 * Escaping for the places Handlebars' HTML escaping does not cover: JSON inside a <script>
 * element and text inside Markdown tables.
 * @module
 */

/**
 * JSON safe to place inside `<script type="application/json">`: `<`, `>` and `&` become
 * `\u003c`-style escapes (so `</script>` or `<!--` in data cannot end or confuse the element),
 * and U+2028/U+2029 are escaped too. `JSON.parse` of the text gives the value back.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** HTML-escape text (what Handlebars' {{ }} does, for text built outside templates). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A letter or digit of any script: CommonMark reads `_` between two of them as text, never emphasis. */
const WORD = /[\p{L}\p{N}]/u;

/**
 * Text for a Markdown table cell or line, paste-ready and inert: no HTML entities for ordinary
 * text (`p = 0.5`, `Cliff's delta`, `news_ru` stay as written). Escaped, by CommonMark's rules:
 * `\`, `` ` ``, `*`, `~` and `|` (code, emphasis, strikethrough, cell splits) with a backslash;
 * `]` before `(`, `[` or `:` and a leading `[` (links, definitions, task boxes); `_` only at a
 * word's edge, where it could open or close emphasis; `&` only where it would start an entity; and `<` only where it would start a tag, comment or autolink,
 * as `&lt;` (the one entity left, so no markup reaches the page). Newlines fold to spaces.
 */
export function escapeMarkdown(text: string): string {
  const s = text.replace(/\r?\n|\r/g, " ").replace(/[\\`*~|]/g, (c) => `\\${c}`);
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    // Brackets make a link only as `[text](url)`, `[text][ref]` or a `[ref]: url` definition, and
    // a task-list box only at the start: escape them there, and leave a CI's "[0.2, 0.4]" alone.
    if ((c === "]" && /[([:]/.test(s[i + 1] ?? "")) || (c === "[" && i === 0)) out += `\\${c}`;
    else if (c === "_" && !(WORD.test(s[i - 1] ?? "") && WORD.test(s[i + 1] ?? ""))) out += "\\_";
    else if (c === "&" && /^&#?[A-Za-z0-9]+;/.test(s.slice(i, i + 40))) out += "\\&";
    else if (c === "<" && /[A-Za-z/!?]/.test(s[i + 1] ?? "")) out += "&lt;";
    else out += c;
  }
  return out;
}
