// examples/deploy.ts as Deno Deploy runs it: `deno serve` with no permission flags.
// Run by `npm test` (its Node phase), or alone with: node --test tests/deploy/deploy.node-test.mjs
//
// Checks GET / (200), 426 for plain HTTP on /ws, the echo, and that SIGTERM closes a client with
// 1001 and ends the process with status 0 well within Deploy's ~5 s grace period.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DENO = join(root, "node_modules", ".bin", "deno");
const LISTEN_TIMEOUT_MS = 20_000;
const GRACE_MS = 5_000;
const EVENT_MS = 5_000;

/** `promise`, or a rejection naming `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts `deno serve` on a free port; resolves with the child and its base URL. */
function startDeploy() {
  // Deno colours its output whenever FORCE_COLOR is set, whatever its value.
  const { FORCE_COLOR: _, ...env } = process.env;
  const child = spawn(DENO, ["serve", "--host", "127.0.0.1", "--port", "0", "examples/deploy.ts"], {
    cwd: root,
    env: { ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`deno serve did not listen:\n${output}`)),
      LISTEN_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      output += chunk;
      // deno-lint-ignore no-control-regex
      const match = /Listening on (http:\/\/[\d.]+:\d+)/.exec(output.replace(/\x1b\[[\d;]*m/g, ""));
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`deno serve exited with ${code}:\n${output}`));
    });
  });
  return { child, exited, listening, output: () => output };
}

test("examples/deploy.ts under deno serve: 200, 426, echo, and SIGTERM within the grace period", {
  timeout: 60_000,
}, async () => {
  const server = startDeploy();
  try {
    const http = await server.listening;
    const home = await fetch(`${http}/`, { signal: AbortSignal.timeout(EVENT_MS) });
    assert.equal(home.status, 200);
    await home.text();
    const plain = await fetch(`${http}/ws`, { signal: AbortSignal.timeout(EVENT_MS) });
    assert.equal(plain.status, 426);
    await plain.text();

    const socket = new WebSocket(`${http.replace("http", "ws")}/ws`);
    const messages = [];
    let onMessage;
    socket.on("message", (data, isBinary) => {
      messages.push(isBinary ? new Uint8Array(data) : data.toString());
      onMessage?.();
    });
    const closed = new Promise((resolve) => {
      socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    await within(
      new Promise((resolve, reject) => {
        socket.once("open", resolve);
        socket.once("error", reject);
      }),
      EVENT_MS,
      "the WebSocket's open",
    );
    const received = (count) =>
      new Promise((resolve) => {
        onMessage = () => messages.length >= count && resolve();
        onMessage();
      });
    socket.send("hello deploy");
    socket.send(new Uint8Array([9, 8, 7]));
    await within(received(2), EVENT_MS, "two echoes");
    assert.deepEqual(messages, ["hello deploy", new Uint8Array([9, 8, 7])]);

    const start = Date.now();
    server.child.kill("SIGTERM");
    // Under `deno serve` Deno's own SIGTERM handling closes the sockets first (see examples/deploy.ts);
    // wsport's own shutdown, 1001 "going away", is tested in tests/shutdown.test.ts.
    assert.deepEqual(await within(closed, GRACE_MS, "the client's close"), {
      code: 1001,
      reason: "Server shutting down",
    });
    const { code } = await within(server.exited, GRACE_MS, "deno serve to exit");
    const elapsed = Date.now() - start;
    assert.equal(code, 0, server.output());
    assert.ok(elapsed < GRACE_MS, `stopped in ${elapsed} ms`);
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
      await within(server.exited, EVENT_MS, "deno serve to exit after SIGKILL");
    }
  }
});
