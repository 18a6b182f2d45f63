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
    const home = await fetch(`${http}/`);
    assert.equal(home.status, 200);
    await home.text();
    const plain = await fetch(`${http}/ws`);
    assert.equal(plain.status, 426);
    await plain.text();

    const socket = new WebSocket(`${http.replace("http", "ws")}/ws`);
    const messages = [];
    let onMessage;
    socket.on("message", (data, isBinary) => {
      messages.push(isBinary ? new Uint8Array(data) : data.toString());
      onMessage?.();
    });
    const closed = new Promise((resolve) => socket.on("close", (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    const received = (count) =>
      new Promise((resolve) => {
        onMessage = () => messages.length >= count && resolve();
        onMessage();
      });
    socket.send("hello deploy");
    socket.send(new Uint8Array([9, 8, 7]));
    await received(2);
    assert.deepEqual(messages, ["hello deploy", new Uint8Array([9, 8, 7])]);

    const start = Date.now();
    server.child.kill("SIGTERM");
    assert.equal(await closed, 1001);
    const { code } = await server.exited;
    const elapsed = Date.now() - start;
    assert.equal(code, 0, server.output());
    assert.ok(elapsed < GRACE_MS, `stopped in ${elapsed} ms`);
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  }
});
