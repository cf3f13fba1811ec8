import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { STORIES_MODEL as STORIES, STORIES_TOKENIZER } from "../models/fixtures.ts";
import { BENCH_SPEC } from "./bench_options.ts";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";

const dir = await Deno.makeTempDir({ prefix: "peft-cli-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function write(name: string, text: string | Uint8Array): string {
  const path = join(dir, name);
  Deno.mkdirSync(join(path, ".."), { recursive: true });
  if (typeof text === "string") Deno.writeTextFileSync(path, text);
  else Deno.writeFileSync(path, text);
  return path;
}

/** Run bench on the stories260K fixture, records into `out`. */
async function bench(args: string[], out: string): Promise<{ code: number; stderr: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--model", STORIES, "--out", out, ...args],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: res.code, stderr: new TextDecoder().decode(res.stderr) };
}

/** Every file under `path` (none when it does not exist). */
function filesUnder(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].flatMap((e) =>
      e.isDirectory ? filesUnder(join(path, e.name)).map((f) => join(e.name, f)) : [e.name]
    );
  } catch {
    return [];
  }
}

const rows = (n: number, label: (i: number) => string) =>
  ["text,label", ...Array.from({ length: n }, (_, i) => `text ${i},${label(i)}`)].join("\n") + "\n";

Deno.test({
  name: "bench CLI: hostile input is one error line with a real fix, exit code 2, and nothing written",
  ignore: !canRun,
  fn: async () => {
    const outFile = write("taken.json", "{}");
    const beir = join(dir, "beir");
    write("beir/corpus.jsonl", '{"_id":"d1","text":"a"}\n');
    write("beir/queries.jsonl", '{"_id":"q1","text":"b"}\n');
    Deno.mkdirSync(join(beir, "qrels"), { recursive: true });
    const skos = write(
      "nolabels.ttl",
      '@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n<http://x/a> a skos:Concept ; skos:definition "d"@en .\n',
    );
    const bad = write(
      "bad.csv",
      new Uint8Array([...new TextEncoder().encode(rows(10, (i) => `${i % 2}`)), 0xff]),
    );
    const cases: [string[], RegExp][] = [
      [["--seed", "4294967296"], /--seed 4294967296: a seed is an integer from 0 to 4294967295/],
      [["--seed", "0,0"], /--seed 0,0: seed 0 is given twice; list each seed once/],
      [["--rank", "4", "--opt", "rank=2"], /--rank 4 and --opt rank=2 set 'rank' differently; give it once/],
      [
        ["--max-length", "600"],
        /--max-length 600 exceeds the context of model .* \(512 tokens\); use --max-length 512/,
      ],
      [
        ["--dataset", `csv:${write("empty.csv", "")}`],
        /empty\.csv:1: empty file; add a header row and data rows/,
      ],
      [
        ["--dataset", `csv:${write("cols.csv", "sentence,topic\na,x\nb,y\n")}`],
        /cols\.csv:2: no column "text" \(found: sentence, topic\); rename the column to "text" or set --data-opt textColumn=COLUMN/,
      ],
      [
        ["--dataset", `csv:${write("one.csv", rows(12, () => "pos"))}`],
        /only one class \('pos'\) in train; a classifier needs two or more/,
      ],
      [["--dataset", `csv:${bad}`], /bad\.csv:12: invalid UTF-8 \(byte 0xff/],
      [["--dataset", `beir:${beir}`], /test\.tsv: not found; a BEIR folder needs qrels\/test\.tsv/],
      [
        ["--dataset", `skos:${skos}`],
        /no skos:prefLabel in language "en" \(languages found: none\); add skos:prefLabel labels/,
      ],
      [
        ["--data-opt", "labelColumn=topic"],
        /--data-opt: dataset wordnet-lex does not take option 'labelColumn'; valid keys: maxDev, maxTest/,
      ],
      [["--tokenizer", join(dir, "none.json")], /tokenizer not found: .*none\.json \(check --tokenizer\)/],
      // Found only when the method applies to the loaded model (the first seed's setup).
      [["--seed", "0,1", "--opt", "targets=nowhere"], /nowhere/],
    ];
    for (const [args, re] of cases) {
      const out = join(dir, "out");
      const { code, stderr } = await bench(["--steps", "2", ...args], out);
      const errors = stderr.split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(code, 2, `${args.join(" ")}: exit ${code}\n${stderr}`);
      assert.equal(errors.length, 1, stderr);
      assert.match(errors[0], re);
      assert.deepEqual(filesUnder(out), [], `${args.join(" ")} wrote files`);
    }
    const taken = await bench(["--train-per-class", "2", "--steps", "2"], outFile);
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(
      taken.stderr,
      /error: --out .*taken\.json is a file, not a folder; give a folder for the run records/,
    );
    assert.equal(Deno.readTextFileSync(outFile), "{}");
  },
});

Deno.test({
  name: "bench CLI: --tokenizer and --data-opt reach the run and its record",
  ignore: !canRun,
  fn: async () => {
    const csv = write(
      "topics.csv",
      `sentence,topic\n${Array.from({ length: 30 }, (_, i) => `words ${i},t${i % 2}`).join("\n")}\n`,
    );
    const out = join(dir, "ok");
    const args = [
      "--dataset",
      `csv:${csv}`,
      "--data-opt",
      "textColumn=sentence",
      "--data-opt",
      "labelColumn=topic",
    ];
    const { code, stderr } = await bench(
      [
        ...args,
        "--tokenizer",
        STORIES_TOKENIZER,
        "--train-per-class",
        "4",
        "--steps",
        "2",
        "--max-eval",
        "5",
      ],
      out,
    );
    assert.equal(code, 0, stderr);
    const [file] = filesUnder(out);
    const record = JSON.parse(Deno.readTextFileSync(join(out, file)));
    assert.equal(record.status, "success", record.error);
    assert.equal(record.config.tokenizer, STORIES_TOKENIZER);
    assert.deepEqual(record.config.dataOptions, { textColumn: "sentence", labelColumn: "topic" });
  },
});

Deno.test("error hints name only flags bench has", () => {
  // The messages of everything a bench run executes: methods, datasets, model loading, the harness.
  const dirs = [
    "methods",
    "methods/quant",
    "methods/quant/schemes",
    "datasets",
    "bench/tasks",
    "models/tokenizers",
  ];
  const files = [
    ...dirs.flatMap((d) =>
      [...Deno.readDirSync(join(ROOT, d))].filter((e) => e.isFile && /(?<!_test)\.ts$/.test(e.name))
        .map((e) => join(d, e.name))
    ),
    "bench/config.ts",
    // The run's stages (bench/run.ts imports them), less the environment probe (git's own flags) and
    // the record module (its hints name `deno task check` flags).
    ...[...Deno.readTextFileSync(join(ROOT, "bench/run.ts")).matchAll(/from "\.\/([a-z_]+\.ts)"/g)]
      .map((m) => `bench/${m[1]}`).filter((f) => f !== "bench/env.ts" && f !== "bench/record.ts"),
    "bench/run.ts",
    "models/load.ts",
  ];
  const flags = new Set(Object.keys(BENCH_SPEC));
  const unknown: string[] = [];
  for (const file of files) {
    const text = Deno.readTextFileSync(join(ROOT, file));
    for (const m of text.matchAll(/--([a-z][a-z0-9-]*)/g)) {
      if (!flags.has(m[1])) unknown.push(`${relative(ROOT, join(ROOT, file))}: --${m[1]}`);
    }
  }
  assert.deepEqual(unknown, []);
});
