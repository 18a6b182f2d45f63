// The core names no runtime: each root entry bundles with esbuild, the Workers entry's bundle holds no
// Deno, Bun, Node or ws code, and each core module, bundled alone, names none either.
// Run by `npm test` (its Node phase), or alone with: node --test tests/bundle.node-test.mjs
// (named so that `deno test` and `bun test` leave it alone: esbuild's API is Node's).
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The package's entry points (package.json and deno.json export these). */
const ENTRIES = ["mod.ts", "hono.ts", "workers.ts", "redis.ts"];

/** Modules every entry shares: none may reach a runtime. */
const CORE = [
  "src/connection.ts",
  "src/server.ts",
  "src/handshake.ts",
  "src/options.ts",
  "src/counters.ts",
  "src/broadcast.ts",
  "src/router.ts",
  "src/pubsub/hub.ts",
  "src/errors.ts",
];

/** What runtime code looks like in a bundle: a runtime global, a Node built-in, the ws package. */
const RUNTIME_CODE = [
  ["Deno.", /\bDeno\.[A-Za-z]/],
  ["Bun.", /\bBun\.[A-Za-z]/],
  ["node:http", /["']node:http["']/],
  ["node: built-in", /["']node:[a-z_/]+["']/],
  ["ws", /(?:from\s*|import\(\s*|require\(\s*)["']ws["']/],
];

/** Bundles one file (npm packages left out, as a Workers build would reject them anyway). */
async function bundle(path) {
  const result = await esbuild.build({
    entryPoints: [join(root, path)],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    packages: "external",
    metafile: true,
    legalComments: "none",
    // Drops comments (JSDoc may name a runtime: `Deno.serve(wss.fetch)`), keeps identifiers.
    minifyWhitespace: true,
    logLevel: "silent",
  });
  return { code: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs) };
}

function runtimeNamed(code) {
  return RUNTIME_CODE.filter(([, pattern]) => pattern.test(code)).map(([name]) => name);
}

for (const entry of ENTRIES) {
  test(`the entry ${entry} bundles with esbuild`, async () => {
    const { code } = await bundle(entry);
    assert.ok(code.length > 0);
  });
}

test("the Workers bundle holds no Deno, Bun, node:http or ws code, nor any runtime adapter", async () => {
  const { code, inputs } = await bundle("workers.ts");
  assert.deepEqual(runtimeNamed(code), []);
  const adapters = inputs.filter((input) =>
    /src\/adapters\/(deno|bun|node)\.ts$|src\/(engine|create_server|serve)\.ts$/.test(input)
  );
  assert.deepEqual(adapters, []);
  assert.ok(inputs.includes("src/workers/adapter.ts"), `inputs: ${inputs}`);
});

for (const module of CORE) {
  test(`the core module ${module} names no runtime`, async () => {
    const { code, inputs } = await bundle(module);
    assert.deepEqual(runtimeNamed(code), [], `${module} bundles runtime code`);
    const reached = inputs.filter((input) =>
      /src\/adapters\/|src\/(engine|create_server|serve)\.ts$/.test(input)
    );
    assert.deepEqual(reached, [], `${module} reaches runtime code through ${reached}`);
  });
}

test("the check sees runtime code: the Deno adapter's bundle names Deno", async () => {
  // Guards the patterns above: were they never to match, every test above would pass on anything.
  assert.ok(runtimeNamed((await bundle("src/adapters/deno.ts")).code).includes("Deno."));
  assert.ok(runtimeNamed((await bundle("src/adapters/bun.ts")).code).includes("Bun."));
  assert.ok(runtimeNamed((await bundle("mod.ts")).code).includes("node:http"));
});
