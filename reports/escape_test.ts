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
  assert.ok(s.includes("\\[x\\]\\(javascript:y\\)"));
});
