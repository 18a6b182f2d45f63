#!/usr/bin/env node
// npm run test:mutations [-- [--keep] [NAME-SUBSTRING…]]
//
// Breaks src/ on purpose, one targeted mutation at a time, and checks that the suite notices on
// every runtime. Each mutation is an exact (file, search, replace): when src/ changes shape and
// the search string is gone (or no longer unique), the run stops at once with "mutation target
// not found" — update the entry. Each is applied to a scratch copy of the repository (node_modules
// linked, not copied) and run, through scripts/test.mjs, against the test files it names, on
// Deno and on Bun. The run passes only when the unmutated copy passes those files and every
// mutation makes each of its runtimes fail.
//
// `runtimes` names the phases of scripts/test.mjs it is judged on: "deno" (Deno's default engine, the
// ws engine), "deno-native" (Deno's native engine) and "bun"; it defaults to ["deno", "bun"]. A mutation
// of code that only some of them run (the Deno adapter, Bun's native limits, the core's checks the ws
// engine does not need) names those, and says why in `why`.
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MUTATIONS = [
  // --- write limit and drain ---
  {
    name: "send() never waits for a drain",
    file: "src/connection.ts",
    search:
      "if (this.#transport.bufferedAmount > this.#context.limits.writeHigh) return this.#waitForDrain();",
    replace: "",
    tests: ["tests/limits.test.ts"],
    filter: "writeLimit|firehose",
  },
  {
    name: "a waiting send() resolves above writeLow",
    file: "src/connection.ts",
    search: "if (this.#transport.bufferedAmount > this.#context.limits.writeLow) {",
    replace: "if (this.#transport.bufferedAmount > this.#context.limits.writeHigh) {",
    tests: ["tests/limits.test.ts"],
    filter: "writeLimit",
  },
  {
    name: "trySend() (broadcast) ignores the write limit",
    file: "src/connection.ts",
    search: "if (this.#bufferedBeforeTurn > writeHigh || buffered > burstLimit(writeHigh)) return false;",
    replace: "",
    tests: ["tests/pubsub.test.ts", "tests/send_fairness.test.ts"],
    filter: "broadcast",
  },
  {
    name: "a burst in one turn counts against healthy readers (Deno skipped them)",
    file: "src/connection.ts",
    search: "if (this.#sendTurn !== turn) {",
    replace: "if (true) {",
    tests: ["tests/send_fairness.test.ts"],
    filter: "burst",
    runtimes: ["deno-native"],
    why: "Bun writes to the kernel at once, so a fast reader's buffer stays empty within a turn there; " +
      "on the ws engine it stays under the mark too (measured: the mutation passes there)",
  },
  {
    name: "a send loop never yields to the event loop",
    file: "src/connection.ts",
    search: "return yieldIfTurnIsLong() ?? RESOLVED;",
    replace: "return RESOLVED;",
    tests: ["tests/send_fairness.test.ts"],
    filter: "send loop",
    runtimes: ["bun"],
    why: "on Deno the buffer passes the high mark within the turn, so send() waits for the drain anyway",
  },
  // --- other limits ---
  {
    name: "maxMessageSize is one byte larger",
    file: "src/options.ts",
    search: 'maxMessageSize: checkNumber("maxMessageSize", options.maxMessageSize ?? d.maxMessageSize, 1),',
    replace:
      'maxMessageSize: checkNumber("maxMessageSize", options.maxMessageSize ?? d.maxMessageSize, 1) + 1,',
    tests: ["tests/limits.test.ts", "tests/conformance/frames.test.ts"],
    filter: "maxMessageSize",
  },
  {
    name: "the core lets an oversized message through (no 1009)",
    file: "src/connection.ts",
    search: 'if (tooBig) return this.#closeForLimit(1009, "message too big", "messageTooBig");',
    replace: "if (tooBig) void 0;",
    tests: ["tests/limits.test.ts", "tests/conformance/frames.test.ts"],
    filter: "maxMessageSize",
    runtimes: ["deno-native"],
    why:
      "Bun's uWebSockets and ws (the ws engine) enforce maxMessageSize themselves; the core's check runs " +
      "only on Deno's native engine",
  },
  {
    name: "Bun's oversized-message close is reported as 1006, not 1009",
    file: "src/adapters/bun.ts",
    search: "code = 1009;",
    replace: "void 0;",
    tests: ["tests/limits.test.ts", "tests/conformance/frames.test.ts"],
    filter: "maxMessageSize",
    runtimes: ["bun"],
    why: "the Bun adapter's mapping; Deno's close comes from the core's own check",
  },
  {
    name: "maxQueue never closes with 1013",
    file: "src/connection.ts",
    search: "if (!pausable && queuedBytes > budget) {",
    replace: "if (queuedBytes < 0) {",
    tests: ["tests/limits.test.ts"],
    filter: "maxQueue",
    runtimes: ["deno-native", "bun"],
    why: "the ws engine (Deno's default) pauses reading instead of closing with 1013",
  },
  {
    name: "maxConnections lets one more in",
    file: "src/handshake.ts",
    search: "if (open >= (policy.maxConnections ?? Infinity)) {",
    replace: "if (open > (policy.maxConnections ?? Infinity)) {",
    tests: ["tests/limits.test.ts"],
    filter: "maxConnections",
  },
  {
    name: "idle timeout 4× longer",
    file: "src/options.ts",
    search: 'idleTimeout: checkNumber("idleTimeout", options.idleTimeout ?? d.idleTimeout, 0),',
    replace: 'idleTimeout: checkNumber("idleTimeout", options.idleTimeout ?? d.idleTimeout, 0) * 4,',
    tests: ["tests/limits.test.ts"],
    filter: "keepalive",
  },
  {
    name: "Deno is not given the idle timeout (no keepalive)",
    file: "src/adapters/deno.ts",
    search: "idleTimeout: Math.ceil(limits.idleTimeout / 1000),",
    replace: "idleTimeout: 0,",
    tests: ["tests/limits.test.ts"],
    filter: "keepalive",
    runtimes: ["deno-native"],
    why: "the Deno adapter (Deno's native engine)",
  },
  {
    name: "Bun does not ping (keepalive drops a live peer)",
    file: "src/adapters/bun.ts",
    search: "sendPings: true,",
    replace: "sendPings: false,",
    tests: ["tests/limits.test.ts"],
    filter: "keepalive",
    runtimes: ["bun"],
    why: "the Bun adapter",
  },
  {
    name: "closeTimeout never drops the peer",
    file: "src/connection.ts",
    search: "    this.#closeTimer = undefined;\n    if (this.#state === CLOSED) return;",
    replace: "    this.#closeTimer = undefined;\n    return;",
    tests: ["tests/limits.test.ts", "tests/shutdown.test.ts"],
    filter: "closeTimeout|unresponsive",
    runtimes: ["deno"],
    why: "Bun shuts TCP down inside close() without waiting for the peer, so the timer never fires there " +
      "(tests/limits.test.ts asserts that Bun drops such a peer at once)",
  },
  // --- handshake ---
  {
    name: "plain HTTP gets 400, not 426",
    file: "src/handshake.ts",
    search: 'return refuse("upgradeRequired", 426,',
    replace: 'return refuse("upgradeRequired", 400,',
    tests: ["tests/conformance/handshake.test.ts", "tests/server.test.ts"],
  },
  {
    name: "origins are not checked (no 403)",
    file: "src/handshake.ts",
    search: "if (policy.origins && !isOriginAllowed(request, policy.origins)) {",
    replace: "if (policy.origins && false) {",
    tests: ["tests/conformance/handshake.test.ts", "tests/server.test.ts"],
    filter: "[Oo]rigin",
  },
  // --- handler lifecycle ---
  {
    name: "a ConnectionClosed that escapes the handler is reported to onError",
    file: "src/server.ts",
    search: "if (error instanceof ConnectionClosed) return this.#handlerReturned(connection);",
    replace: "if (error instanceof ConnectionClosed) {\n      this.#report(error, connection);\n" +
      "      return this.#handlerReturned(connection);\n    }",
    tests: ["tests/conformance/frames.test.ts"],
  },
  {
    name: "a handler that throws closes with 1000, not 1011",
    file: "src/server.ts",
    search: 'connection.close(1011, "internal error")',
    replace: "connection.close(1000)",
    tests: ["tests/server.test.ts"],
    filter: "throws",
  },
  // --- shutdown ---
  {
    name: "finished resolves as soon as close() starts",
    file: "src/server.ts",
    search: "this.#closing = this.drain(",
    replace: "this.#finished.resolve();\n    this.#closing = this.drain(",
    tests: ["tests/shutdown.test.ts"],
  },
  {
    name: "wsport's own 1001 loop removed on shutdown",
    file: "src/server.ts",
    search:
      'if (connection.readyState === "open") connection.close(options.code, options.reason).catch(() => {});',
    replace: "void connection;",
    tests: ["tests/shutdown.test.ts"],
    filter: "50 peers", // (every other shutdown then waits closeTimeout before failing)
  },
  {
    name: "shutdown answers 500 instead of 503",
    file: "src/server.ts",
    search: 'refuse("shuttingDown", 503,',
    replace: 'refuse("shuttingDown", 500,',
    tests: ["tests/shutdown.test.ts"],
  },
  {
    name: "shutdown waits for handlers far past closeTimeout",
    file: "src/server.ts",
    search: "const timeout = this.limits.closeTimeout + 100;",
    replace: "const timeout = this.limits.closeTimeout * 20 + 100;",
    tests: ["tests/shutdown.test.ts"],
    filter: "closeTimeout",
  },
  // --- pub/sub ---
  {
    name: "Redis: no resubscribe after a reconnect",
    file: "src/pubsub/redis.ts",
    search: "autoResubscribe: true,",
    replace: "autoResubscribe: false,",
    tests: ["tests/pubsub.test.ts"],
    filter: "Redis backend",
  },
  // --- history and recovery ---
  {
    name: "in-memory recovery replays from the message the reader already has",
    file: "src/history/memory.ts",
    search: "const missing = since.offset + 1; // the first message the reader lacks",
    replace: "const missing = since.offset; // the first message the reader lacks",
    tests: ["tests/history.test.ts"],
  },
  {
    name: "a position past the in-memory log is not an epoch change",
    file: "src/history/memory.ts",
    search: "if (since.epoch !== log.epoch || since.offset > log.last || since.offset < 0) {",
    replace: "if (since.epoch !== log.epoch || since.offset < 0) {",
    tests: ["tests/history.test.ts"],
  },
  {
    name: "live messages held during a replay are sent again after it",
    file: "src/pubsub/hub.ts",
    search: "if (result.recovered && position?.epoch === epoch && position!.offset <= last) continue;",
    replace: "",
    tests: ["tests/history_redis.test.ts"],
    filter: "burst",
  },
  {
    name: "Redis recovery ignores the epoch",
    file: "src/pubsub/redis_history.ts",
    search: "if ARGV[3] ~= epoch or from > top then return { epoch, top, 'epoch', {} } end",
    replace: "if from > top then return { epoch, top, 'epoch', {} } end",
    tests: ["tests/redis_history.test.ts", "tests/history_redis.test.ts"],
    filter: "epoch|FLUSHALL",
  },
];

/** The label scripts/test.mjs reports for each phase a mutation may name in `runtimes`. */
const PHASE_LABELS = { deno: "deno", "deno-native": "deno (native engine)", bun: "bun" };
const DEFAULT_RUNTIMES = ["deno", "bun"];

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const keep = args.includes("--keep");
const only = args.filter((arg) => !arg.startsWith("--"));
const selected = only.length > 0
  ? MUTATIONS.filter((m) => only.some((part) => m.name.toLowerCase().includes(part.toLowerCase())))
  : MUTATIONS;
if (selected.length === 0) {
  console.error(`mutations: none matches ${only.join(", ")}`);
  process.exit(2);
}

// Every target must be there, once, and every runtime known, before anything runs.
let broken = false;
for (const m of selected) {
  for (const runtime of m.runtimes ?? []) {
    if (!(runtime in PHASE_LABELS)) {
      console.error(
        `mutations: "${m.name}": unknown runtime ${runtime} (${Object.keys(PHASE_LABELS).join(", ")})`,
      );
      broken = true;
    }
  }
  const text = readFileSync(join(root, m.file), "utf8");
  const count = text.split(m.search).length - 1;
  if (count !== 1) {
    console.error(
      `mutations: "${m.name}": mutation target ${count === 0 ? "not found" : `found ${count} times`} in ` +
        `${m.file}:\n  ${m.search}\n  (src/ changed shape: update the entry in scripts/mutations.mjs)`,
    );
    broken = true;
  }
}
if (broken) process.exit(1);

const scratch = mkdtempSync(join(tmpdir(), "wsport-mutants-"));
cpSync(root, scratch, {
  recursive: true,
  filter: (source) => !/\/(node_modules|\.git|\.bench)$/.test(source),
});
symlinkSync(realpathSync(join(root, "node_modules")), join(scratch, "node_modules"));

/** Runs scripts/test.mjs in the scratch copy; resolves with its JSON result and log. */
function runSuite(files, filter, label, runtimes) {
  const json = join(scratch, `.result-${label}.json`);
  const log = join(scratch, `.log-${label}.txt`);
  const argv = [
    join(scratch, "scripts", "test.mjs"),
    "--phase-limit=240",
    "--test-limit=90",
    `--json=${json}`,
    // Only the phases the mutation is judged on: the engine phases would double the run.
    `--phases=${runtimes.join(",")}`,
    ...(filter ? [`--filter=${filter}`] : []),
    ...files,
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: scratch, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => output += chunk);
    child.stderr.on("data", (chunk) => output += chunk);
    child.on("close", (code) => {
      writeFileSync(log, output);
      let result;
      try {
        result = JSON.parse(readFileSync(json, "utf8"));
      } catch {
        result = undefined;
      }
      resolve({ code, result, log });
    });
  });
}

const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
const started = Date.now();
let exitCode = 0;
try {
  // The unmutated copy must pass what the mutations run, or a "caught" would mean nothing.
  const baselineFiles = [...new Set(selected.flatMap((m) => m.tests))].sort();
  const baselineRuntimes = Object.keys(PHASE_LABELS).filter((runtime) =>
    selected.some((m) => (m.runtimes ?? DEFAULT_RUNTIMES).includes(runtime))
  );
  console.log(
    `mutations: baseline (unmutated) over ${baselineFiles.join(" ")} on ${baselineRuntimes.join(", ")}`,
  );
  let baseline = await runSuite(baselineFiles, undefined, "baseline", baselineRuntimes);
  if (baseline.code !== 0) {
    // Say what failed (CI keeps no scratch copy), then run it once more: a failure that does
    // not repeat is a flaky test to fix, reported here, but it does not void the mutations.
    reportFailures("the unmutated copy failed", baseline);
    baseline = await runSuite(baselineFiles, undefined, "baseline-again", baselineRuntimes);
    if (baseline.code === 0) console.log("mutations: FLAKY: the baseline passed on a second run (see above)");
  }
  const baselinePassed = baseline.code === 0;
  if (baselinePassed) {
    console.log(`mutations: baseline passed (${baseline.result.passed} passed) in ${elapsed(started)}`);
  } else {
    reportFailures("the unmutated copy fails again, so no mutation can be judged", baseline);
    exitCode = 1;
  }

  const survivors = [];
  for (const m of baselinePassed ? selected : []) {
    const runtimes = m.runtimes ?? DEFAULT_RUNTIMES;
    const path = join(scratch, m.file);
    const original = readFileSync(path, "utf8");
    writeFileSync(path, original.replace(m.search, m.replace));
    const start = Date.now();
    const { result, log } = await runSuite(m.tests, m.filter, slug(m.name), runtimes);
    writeFileSync(path, original);
    const verdicts = runtimes.map((runtime) => {
      const phase = result?.phases.find((p) => p.runtime === PHASE_LABELS[runtime]);
      const failures = phase ? phase.failed + phase.problems.length : 0;
      const first = phase?.failures[0] ?? phase?.problems[0];
      return { runtime, caught: failures > 0, first };
    });
    const caught = verdicts.every((v) => v.caught);
    const declared = m.runtimes ? ` [${m.runtimes.join(", ")} only: ${m.why}]` : "";
    console.log(`${caught ? "caught  " : "SURVIVED"} ${m.name} (${elapsed(start)})${declared}`);
    for (const v of verdicts) {
      console.log(`         ${v.runtime}: ${v.caught ? `failed: ${v.first}` : `passed (log: ${log})`}`);
    }
    if (!caught) survivors.push(m.name);
  }
  if (baselinePassed) {
    console.log(
      `\nmutations: ${selected.length - survivors.length} of ${selected.length} caught on every runtime ` +
        `they apply to, in ${elapsed(started)}`,
    );
  }
  if (survivors.length > 0) {
    console.log(`mutations: survived: ${survivors.join("; ")}`);
    exitCode = 1;
  }
} finally {
  if (keep || exitCode !== 0) console.log(`mutations: scratch copy and logs kept in ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}
process.exit(exitCode);

/** Prints the failures of a run, from its JSON result or else the end of its log. */
function reportFailures(what, run) {
  console.log(`mutations: ${what} (exit code ${run.code}); log: ${run.log}`);
  const lines = [
    ...(run.result?.phases ?? []).flatMap((phase) =>
      [...phase.failures, ...phase.problems].map((failure) => `  ${phase.runtime}: ${failure}`)
    ),
    ...(run.result?.problems ?? []).map((problem) => `  ${problem}`),
  ];
  if (lines.length > 0) console.log(lines.join("\n"));
  else console.log(readFileSync(run.log, "utf8").split("\n").slice(-40).join("\n"));
}

function elapsed(since) {
  const seconds = Math.round((Date.now() - since) / 1000);
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${seconds} s`;
}
