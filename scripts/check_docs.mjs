#!/usr/bin/env node
// Type-checks every ```ts block of README.md and docs/*.md with `deno check`, so that documented code
// cannot drift from the API (`npm run check:docs`; `.ci/run` runs it after `deno check`).
//
// - Each block is written to a temporary file in the repository root, so that "./mod.ts" resolves;
//   the package names, "@wsport/wsport" (JSR) and "wsport" (npm), and their subpaths are rewritten to
//   the files deno.json exports (on the same line: error positions stay those of the block).
// - Blocks run on Bun see `Bun.serve` as Bun's own types declare it (scripts/check_docs_bun.d.ts):
//   neither Deno nor this project ships Bun's types.
// - ```ts ignore skips a block (keep it for what cannot be a module: an output, a fragment of an
//   object). ```ts excerpt=PATH also asserts that the block, less its import lines, appears verbatim in
//   PATH (a test that runs the documented code as written).
// - Every relative link ([text](path) or [text](path#anchor)) must name a file that exists and, for a
//   Markdown file, a heading it has (GitHub's anchors: lower case, punctuation dropped, spaces to "-").
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

/**
 * The package names and their subpaths ("@wsport/wsport/redis", "wsport/redis"), mapped to the files
 * deno.json exports (the npm build compiles the same files, so both names lead to the same source).
 */
function packageSpecifiers() {
  const { name: jsrName, exports } = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
  const { name: npmName } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const map = new Map();
  for (const name of [jsrName, npmName]) {
    for (const [subpath, target] of Object.entries(exports)) {
      map.set(subpath === "." ? name : `${name}/${subpath.slice(2)}`, target);
    }
  }
  return map;
}

const specifiers = packageSpecifiers();

/** Rewrites the specifiers of `from "…"` and `import("…")` only: a string that merely reads "wsport" stays. */
function rewriteImports(code) {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|^import\s*)(["'])((?:@wsport\/)?wsport(?:\/[\w-]+)?)\2/gm,
    (match, before, quote, specifier) => {
      const target = specifiers.get(specifier);
      return target ? before + quote + target + quote : match;
    },
  );
}

const withoutImports = (code) => code.split("\n").filter((line) => !/^import\b/.test(line)).join("\n").trim();

/** GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to "-". */
function slug(heading) {
  return heading.trim().toLowerCase().replace(/[`*_]/g, "").replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[^\p{L}\p{N}\s-]/gu, "").replace(/\s/g, "-");
}

/** The anchors of a Markdown file's headings (outside fenced blocks), with GitHub's -1, -2 for repeats. */
function anchors(text) {
  const seen = new Map();
  let fence;
  for (const line of text.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (!fence || marker.startsWith(fence))) {
      fence = fence ? undefined : marker;
      continue;
    }
    const heading = fence ? undefined : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(count === 0 ? base : `${base}-${count}`, 0);
    seen.set(base, count + 1);
  }
  return new Set(seen.keys());
}

/** Problems with the relative links of a Markdown file: a missing file or heading. */
function linkProblems(file, text) {
  const found = [];
  const name = relative(root, file);
  let fence;
  text.split("\n").forEach((line, index) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (!fence || marker.startsWith(fence))) {
      fence = fence ? undefined : marker;
      return;
    }
    if (fence) return;
    for (const [, target] of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split("#");
      const resolved = path === "" ? file : join(dirname(file), decodeURIComponent(path));
      const shown = relative(root, resolved);
      if (!existsSync(resolved)) {
        found.push(`${name}:${index + 1}: ${target}: no such file`);
      } else if (anchor !== undefined && resolved.endsWith(".md")) {
        if (!anchors(readFileSync(resolved, "utf8")).has(anchor)) {
          found.push(`${name}:${index + 1}: ${target}: no heading with that anchor in ${shown}`);
        }
      }
    }
  });
  return found;
}

const temporary = [];
const legend = [];
const problems = [];
let ignored = 0;

try {
  for (const file of markdownFiles()) {
    const name = relative(root, file);
    const text = readFileSync(file, "utf8");
    problems.push(...linkProblems(file, text));
    for (const block of fencedBlocks(text)) {
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
console.log("check_docs: every block type-checks and every relative link resolves");
