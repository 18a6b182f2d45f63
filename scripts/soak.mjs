#!/usr/bin/env node
// npm run bench:soak -- --minutes N   (default 10): bench/soak.ts on Deno, then on Bun.
// Any other flags are passed through. Exits non-zero if either run says so.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
if (!args.includes("--minutes")) args.push("--minutes", "10");
const bin = (name) => join(root, "node_modules", ".bin", name);
let status = 0;
for (const [name, command, prefix] of [["deno", bin("deno"), ["run", "-A"]], ["bun", bin("bun"), []]]) {
  console.log(`\n=== soak on ${name} ===`);
  const result = spawnSync(command, [...prefix, join(root, "bench", "soak.ts"), ...args], {
    stdio: "inherit",
    cwd: root,
  });
  status ||= result.status ?? 1;
}
process.exit(status);
