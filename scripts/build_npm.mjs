#!/usr/bin/env node
// Builds the npm package: the TypeScript of the root entries and src/ to JavaScript with .d.ts files
// in dist/ (Node refuses to strip types inside node_modules). `npm run build`; `npm pack` and
// `npm publish` run it first (prepack). JSR publishes the .ts sources themselves (deno.json).
//
// tsc emits without type-checking (tsconfig.build.json: noCheck): `deno check` is the project's type
// check, and src/ uses Deno's and Bun's globals, which a Node build has no types for. What it checks:
// - package.json, deno.json and CHANGELOG.md's newest entry carry one version;
// - every file package.json exports exists;
// - no declaration file names Deno's or Bun's namespaces (a consumer with only @types/node could not
//   type-check it); tests/package.node-test.mjs type-checks a consumer against dist/ as well.
//
// Usage: node scripts/build_npm.mjs
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

const readJson = (name) => JSON.parse(readFileSync(join(root, name), "utf8"));

/**
 * The package's version, once: package.json (npm), deno.json (JSR) and the newest `## [x.y.z]`
 * heading of CHANGELOG.md must agree. Returns the problems (none when they do).
 */
export function versionProblems() {
  const npm = readJson("package.json").version;
  const jsr = readJson("deno.json").version;
  const changelog = readFileSync(join(root, "CHANGELOG.md"), "utf8");
  const newest = /^## \[(\d+\.\d+\.\d+[^\]]*)\]/m.exec(changelog)?.[1];
  const problems = [];
  if (jsr !== npm) problems.push(`deno.json has version ${jsr}, package.json ${npm}`);
  if (newest !== npm) {
    problems.push(`CHANGELOG.md's newest entry is ${newest ?? "missing"}, package.json's version ${npm}`);
  }
  return problems;
}

/** Every file package.json's `exports` names (each condition of each entry). */
export function exportedFiles() {
  const files = [];
  const collect = (target) => {
    if (typeof target === "string") files.push(target);
    else for (const value of Object.values(target)) collect(value);
  };
  collect(readJson("package.json").exports);
  return [...new Set(files)];
}

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]
  );
}

/** Deno's or Bun's namespace used in code (comments stripped: JSDoc may say `Bun.serve`). */
function runtimeNamespaces(declarations) {
  const code = declarations.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...new Set(code.match(/\b(?:Deno|Bun)\.[A-Za-z]+/g) ?? [])];
}

function fail(message) {
  console.error(`build_npm: ${message}`);
  process.exit(1);
}

function build() {
  const versions = versionProblems();
  if (versions.length > 0) fail(versions.join("; "));
  rmSync(dist, { recursive: true, force: true });
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) fail("typescript is missing from node_modules: run npm ci");
  const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0) fail("tsc failed");
  const missing = exportedFiles().filter((file) => !existsSync(join(root, file)));
  if (missing.length > 0) fail(`package.json exports files tsc did not emit: ${missing.join(", ")}`);
  const named = walk(dist).filter((file) => file.endsWith(".d.ts")).flatMap((file) =>
    runtimeNamespaces(readFileSync(file, "utf8")).map((name) => `${relative(root, file)}: ${name}`)
  );
  if (named.length > 0) {
    fail(`declarations a Node consumer cannot type-check (runtime namespaces):\n  ${named.join("\n  ")}`);
  }
  const files = walk(dist);
  console.log(
    `build_npm: ${files.length} files in dist/ (${files.filter((f) => f.endsWith(".js")).length} .js)`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) build();
