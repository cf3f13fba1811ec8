/**
 * `deno run -A --no-lock scripts/vendor_tfjs_gradients.ts`: regenerate `models/vendor/tfjs_gradients.js`, the
 * gradient registrations of @tensorflow/tfjs-core as one ES module.
 *
 * Why: tfjs-core ships its gradients only as `dist/register_all_gradients.js` with extension-less
 * ES imports, which Deno cannot load; the `@tensorflow/tfjs` umbrella registers them, but pulls in
 * layers, converter, data, WebGL, core-js and yargs that this project never uses. esbuild bundles the
 * gradient files; every internal module they import whose names tfjs-core exports publicly is imported
 * from `@tensorflow/tfjs-core` (so the bundle shares the project's engine and kernel registry), the
 * internal namespaces come from the public `util` / `backend_util` objects, and the few backprop ops
 * tfjs-core keeps private (pooling, convolution) are bundled. Run it after upgrading tfjs-core.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * esbuild, loaded at run time from a computed specifier so that type-checking the project does not
 * resolve it and add it to deno.lock (it is a tool for regenerating one file, not a dependency).
 */
const ESBUILD = ["npm:esbuild", "0.24.0"].join("@");

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CORE_LINK = join(ROOT, "node_modules/@tensorflow/tfjs-core/dist");
/** The real folder (esbuild resolves through the node_modules symlinks). */
const CORE = existsSync(CORE_LINK) ? realpathSync(CORE_LINK) : CORE_LINK;
const OUT = join(ROOT, "models/vendor/tfjs_gradients.js");
const VERSION = JSON.parse(readFileSync(join(CORE, "../package.json"), "utf8")).version as string;

/** Internal modules the gradients import, served from tfjs-core's public namespace objects. */
const NAMESPACES: Record<string, "util" | "backend_util"> = {
  "util": "util",
  "ops/axis_util": "backend_util",
  "ops/broadcast_util": "backend_util",
  "ops/conv_util": "backend_util",
};

/** Modules written here instead of bundled (they would drag a second Tensor class in). */
const SHIMS: Record<string, string> = {
  engine: 'import { engine } from "@tensorflow/tfjs-core";\nexport const ENGINE = engine();',
  // Gradient functions receive tensors only; the original also converts arrays and numbers.
  tensor_util_env: 'import { Tensor } from "@tensorflow/tfjs-core";\n' +
    "export function convertToTensor(x, name, fn) {\n" +
    "  if (x instanceof Tensor) return x;\n" +
    "  throw new Error(`${fn}: argument ${name} must be a tensor in a gradient`);\n}",
};

const PUBLIC = new Set(Object.keys(tf));

/** True when every name `file` exports is a public export of tfjs-core. */
function allPublic(file: string): boolean {
  const src = readFileSync(file, "utf8");
  if (/export \* from/.test(src)) return false;
  const names = [...src.matchAll(/export (?:function|const|class|let|var) (\w+)/g)].map((m) => m[1]);
  for (const m of src.matchAll(/export \{([^}]*)\}/g)) {
    for (const part of m[1].split(",")) if (part.trim()) names.push(part.trim().split(/\s+as\s+/).pop()!);
  }
  return names.length > 0 && names.every((n) => PUBLIC.has(n));
}

// deno-lint-ignore no-explicit-any
type Plugin = any;

const publicCore: Plugin = {
  name: "public-tfjs-core",
  // deno-lint-ignore no-explicit-any
  setup(build: any) {
    build.onResolve({ filter: /^\./ }, (args: { path: string; resolveDir: string }) => {
      const abs = resolve(args.resolveDir, args.path);
      const rel = relative(CORE, abs);
      if (rel.startsWith("gradients/") || rel === "register_all_gradients") return { path: `${abs}.js` };
      if (rel in SHIMS || rel in NAMESPACES) return { path: rel, namespace: "public" };
      if (rel === "base" || rel === "index" || allPublic(`${abs}.js`)) {
        return { path: "@tensorflow/tfjs-core", external: true };
      }
      return { path: `${abs}.js` };
    });
    build.onLoad({ filter: /.*/, namespace: "public" }, (args: { path: string }) => {
      if (args.path in SHIMS) return { contents: SHIMS[args.path], resolveDir: CORE };
      const ns = NAMESPACES[args.path];
      const names = Object.keys(tf[ns]).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
      return {
        contents: `import { ${ns} } from "@tensorflow/tfjs-core";\nexport const { ${
          names.join(", ")
        } } = ${ns};`,
        resolveDir: CORE,
      };
    });
  },
};

if (import.meta.main) {
  if (!existsSync(CORE)) throw new Error(`${CORE} is missing; run npx -y deno@2.9.6 install first`);
  const esbuild = await import(ESBUILD);
  const result = await esbuild.build({
    entryPoints: [join(CORE, "register_all_gradients.js")],
    bundle: true,
    format: "esm",
    write: false,
    external: ["@tensorflow/tfjs-core"],
    plugins: [publicCore],
    legalComments: "none",
  });
  await esbuild.stop();
  const header = `// Generated by scripts/vendor_tfjs_gradients.ts from @tensorflow/tfjs-core ${VERSION}
// dist/register_all_gradients.js and the gradient files it imports. Do not edit.
// Copyright 2018-2023 Google LLC. Licensed under the Apache License, Version 2.0
// (models/vendor/LICENSE-tfjs); see https://github.com/tensorflow/tfjs.
`;
  const body = result.outputFiles[0].text.replaceAll(dirname(CORE) + "/", "@tensorflow/tfjs-core/");
  await Deno.writeTextFile(OUT, header + body.replaceAll(/^\/\/ .*node_modules.*\n/gm, ""));
  console.log(`wrote ${relative(ROOT, OUT)} (${(header + body).length} bytes)`);
}
