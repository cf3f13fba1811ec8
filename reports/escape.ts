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

/**
 * Text for a Markdown table cell or line: HTML-escaped (a code-hosting site renders `&lt;` as
 * `<`, never as a tag), Markdown punctuation that could form links, emphasis or code
 * backslash-escaped, `|` escaped so it cannot split a cell, and newlines folded to spaces.
 */
export function escapeMarkdown(text: string): string {
  // Backslashes first, entities last: an escape must not land inside an entity like `&#60;`.
  return escapeHtml(text.replace(/\r?\n|\r/g, " ").replace(/[\\[\]()*_~|]/g, (c) => `\\${c}`));
}
