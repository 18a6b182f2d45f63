// Which engine serve() picks on Deno when the ws engine (the default) cannot run: a real `deno run`
// with restricted permissions, as a user would start it. Without the env permission ws needs, the
// default falls back to Deno's native engine and warns once; a deliberate engine: "ws" fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { within } from "./helpers.ts";
import { runtime } from "./runtime.ts";

const notDeno = runtime !== "deno" && "Deno's permissions decide the engine on Deno only";
const FIXTURE = new URL("./fixtures/default_engine.ts", import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the fixture with `permissions` (and `engine` as its argument) and collects what it printed. */
function runFixture(permissions: string[], engine = ""): Promise<Run> {
  // The phase's own engine choice must not reach the child: it reads the variable when it may.
  const { WSPORT_DENO_ENGINE: _, ...env } = process.env;
  const child = spawn(process.execPath, ["run", ...permissions, FIXTURE, engine], {
    env: { ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  return within(
    new Promise<Run>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))),
    30_000,
    `deno run ${permissions.join(" ")}`,
  );
}

/** The fixture's JSON line: the engines its two servers ran and what their echoes returned. */
function result(run: Run): { engines: string[]; echoed: string[] } {
  assert.equal(run.code, 0, `exit code; stderr:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").at(-1)!);
}

const WARNING = "wsport: serve() runs on Deno's native engine, because its default ws engine needs";
const warnings = (run: Run) => run.stderr.split(WARNING).length - 1;

test("without the env permission ws needs, serve() falls back to Deno's native engine and warns once", {
  skip: notDeno,
}, async () => {
  const run = await runFixture(["--allow-net=127.0.0.1"]);
  assert.deepEqual(result(run), { engines: ["deno", "deno"], echoed: ["ping", "ping"] });
  assert.equal(warnings(run), 1, `one warning for two servers expected in:\n${run.stderr}`);
  assert.match(run.stderr, /--allow-env=WS_NO_BUFFER_UTIL/);
  assert.match(run.stderr, /does not bound memory against a peer/);
});

test("with --allow-env=WS_NO_BUFFER_UTIL, serve() runs the ws engine on Deno without a warning", {
  skip: notDeno,
}, async () => {
  const run = await runFixture(["--allow-net=127.0.0.1", "--allow-env=WS_NO_BUFFER_UTIL"]);
  assert.deepEqual(result(run), { engines: ["ws", "ws"], echoed: ["ping", "ping"] });
  assert.equal(run.stderr, "");
});

test('engine: "native" runs Deno\'s native engine without the env permission, silently', {
  skip: notDeno,
}, async () => {
  const run = await runFixture(["--allow-net=127.0.0.1"], "native");
  assert.deepEqual(result(run), { engines: ["deno", "deno"], echoed: ["ping", "ping"] });
  assert.equal(run.stderr, "");
});

test('engine: "ws" without the env permission fails with InvalidOption instead of falling back', {
  skip: notDeno,
}, async () => {
  const run = await runFixture(["--allow-net=127.0.0.1"], "ws");
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /InvalidOption: wsport: the ws engine needs --allow-env/);
  assert.equal(warnings(run), 0);
});
