import assert from "node:assert/strict";
import { escapeHtml, escapeMarkdown, jsonForScript } from "./escape.ts";

Deno.test("jsonForScript cannot close its script element and round-trips", () => {
  const v = { name: "</script><script>alert(1)</script>", c: "<!-- & \u2028" };
  const s = jsonForScript(v);
  assert.ok(!s.includes("<") && !s.includes(">") && !s.includes("&"));
  assert.ok(!s.includes("\u2028"));
  assert.deepEqual(JSON.parse(s), v);
});

Deno.test("escapeHtml escapes markup and attribute quotes", () => {
  assert.equal(escapeHtml(`<a href="x">'&`), "&#60;a href&#61;&#34;x&#34;&#62;&#39;&#38;");
});

Deno.test("escapeMarkdown keeps a table cell one cell and inert", () => {
  const s = escapeMarkdown("a|b <script>alert(1)</script> [x](javascript:y)\nz");
  assert.ok(!s.includes("<script"));
  assert.ok(!/(^|[^\\])\|/.test(s), "every pipe is escaped");
  assert.ok(!s.includes("\n"));
  assert.ok(s.includes("[x\\](javascript:y)"), "no link can form");
  assert.equal(s, "a\\|b &lt;script>alert(1)&lt;/script> [x\\](javascript:y) z");
  assert.equal(escapeMarkdown("[r]: http://x"), "\\[r\\]: http://x", "no link definition");
  assert.equal(escapeMarkdown("![i](x) [a][b]"), "![i\\](x) [a\\][b]");
});

Deno.test("escapeMarkdown is paste-ready: no entities or escapes in plain words", () => {
  // What the issue found in REPORT.md: p &#61; 0.733, Cliff&#39;s delta, news\_ru, p = <0.001.
  assert.equal(escapeMarkdown("p = 0.733"), "p = 0.733");
  assert.equal(escapeMarkdown("Cliff's delta 0.55 (large)"), "Cliff's delta 0.55 (large)");
  assert.equal(escapeMarkdown("news_ru lenta_ru_2024"), "news_ru lenta_ru_2024");
  assert.equal(escapeMarkdown("новости_ру"), "новости_ру", "intraword in any script");
  assert.equal(escapeMarkdown("p < 0.001, a <= b"), "p < 0.001, a <= b");
  assert.equal(escapeMarkdown("95% CI [0.2, 0.4]"), "95% CI [0.2, 0.4]");
  // Where CommonMark would read markup, it is escaped.
  assert.equal(escapeMarkdown("_em_ and *b*"), "\\_em\\_ and \\*b\\*");
  assert.equal(escapeMarkdown("&amp; & co"), "\\&amp; & co");
  assert.equal(escapeMarkdown("`code`"), "\\`code\\`");
  assert.doesNotMatch(escapeMarkdown("x = 'y' \"z\" (w)"), /&#?\w+;/);
});
