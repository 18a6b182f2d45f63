#!/usr/bin/env node
// Type-checks every ```ts block of README.md and docs/*.md with `deno check`, so that documented code
// cannot drift from the API (`npm run check:docs`; `.ci/run` runs it after `deno check`).
//
// - Each block is written to a temporary file in the repository root, so that "./mod.ts" resolves as
//   the README says; "@wsport/wsport" and its subpaths are rewritten to the files deno.json exports
//   (on the same line: error positions stay those of the block).
// - Blocks run on Bun see `Bun.serve` as Bun's own types declare it (scripts/check_docs_bun.d.ts):
//   neither Deno nor this project ships Bun's types.
// - ```ts ignore skips a block (keep it for what cannot be a module: an output, a fragment of an
//   object). ```ts excerpt=PATH also asserts that the block, less its import lines, appears verbatim in
//   PATH (a test that runs the documented code as written).
//
// Usage: node scripts/check_docs.mjs [file.md ...]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const deno = process.env.DENO ?? join(root, "node_modules", ".bin", "deno");
const bunTypes = join(root, "scripts", "check_docs_bun.d.ts");

function markdownFiles() {
  if (process.argv.length > 2) return process.argv.slice(2).map((file) => join(process.cwd(), file));
  const files = [join(root, "README.md")];
  const docs = join(root, "docs");
  if (existsSync(docs)) {
    for (const name of readdirSync(docs).sort()) if (name.endsWith(".md")) files.push(join(docs, name));
  }
  return files;
}

/** The fenced blocks of a Markdown text: language, flags, first line number (1-based), code. */
function fencedBlocks(text) {
  const lines = text.split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(lines[j])) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
      j++;
    }
    blocks.push({
      lang,
      flags: rest.trim().split(/\s+/).filter(Boolean),
      line: i + 2,
      code: body.join("\n"),
    });
    i = j;
  }
  return blocks;
}

/** "@wsport/wsport" and its subpaths, as deno.json maps them, relative to the repository root. */
function packageSpecifiers() {
  const { name, exports } = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
  const map = new Map();
  for (const [subpath, target] of Object.entries(exports)) {
    map.set(subpath === "." ? name : `${name}/${subpath.slice(2)}`, target);
  }
  return map;
}

const specifiers = packageSpecifiers();

function rewriteImports(code) {
  return code.replace(/(["'])(@wsport\/wsport(?:\/[\w-]+)?)\1/g, (match, quote, specifier) => {
    const target = specifiers.get(specifier);
    return target ? quote + target + quote : match;
  });
}

const withoutImports = (code) => code.split("\n").filter((line) => !/^import\b/.test(line)).join("\n").trim();

const temporary = [];
const legend = [];
const problems = [];
let ignored = 0;

try {
  for (const file of markdownFiles()) {
    const name = relative(root, file);
    for (const block of fencedBlocks(readFileSync(file, "utf8"))) {
      if (block.lang !== "ts" && block.lang !== "typescript") continue;
      if (block.flags.includes("ignore")) {
        ignored++;
        continue;
      }
      const excerpt = block.flags.find((flag) => flag.startsWith("excerpt="))?.slice("excerpt=".length);
      if (excerpt) {
        const source = existsSync(join(root, excerpt)) ? readFileSync(join(root, excerpt), "utf8") : "";
        if (!source.includes(withoutImports(block.code))) {
          problems.push(
            `${name}:${block.line}: the block is not, less its imports, a verbatim part of ${excerpt}`,
          );
        }
      }
      const path = join(root, `.check_docs.${name.replaceAll("/", "_")}.L${block.line}.ts`);
      writeFileSync(path, rewriteImports(block.code) + "\n");
      temporary.push(path);
      legend.push(`  ${relative(root, path)} = ${name}:${block.line}`);
    }
  }
  console.log(`check_docs: ${temporary.length} blocks to check (${ignored} marked ignore)`);
  console.log(legend.join("\n"));
  const result = spawnSync(deno, ["check", "--quiet", ...temporary, bunTypes], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0) {
    problems.push("deno check failed on the blocks above (.check_docs.FILE.LN.ts is FILE from line N)");
  }
} finally {
  for (const path of temporary) rmSync(path, { force: true });
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`check_docs: ${problem}`);
  process.exit(1);
}
console.log("check_docs: every block type-checks");
