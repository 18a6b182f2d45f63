import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { type Connection, serve } from "../mod.ts";
import { delay, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { rawRequest, rawWebSocket } from "./raw.ts";
import { runArgs } from "./runtime.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** Whether a new upgrade is refused: 503, or no listener at all. */
async function upgradeRefused(port: number): Promise<boolean> {
  try {
    const response = await rawRequest(port);
    response.socket.destroy();
    return response.status === 503;
  } catch {
    return true; // connection refused: the listener is gone
  }
}

test("close(): 50 clients get 1001, handlers see the end, finished resolves, nothing is left", async () => {
  let handlersEnded = 0;
  let abortedSignals = 0;
  const server = startServer(async (ws) => {
    await echo(ws);
    if (ws.signal.aborted) abortedSignals++;
    handlersEnded++;
  });
  const clients = await Promise.all(Array.from({ length: 50 }, () => TestClient.open(server.url)));
  await waitFor(() => server.connections.size === 50, 5000, "50 connections");
  const closing = server.close();
  assert.ok(await upgradeRefused(server.addr.port), "new upgrades are refused while closing");
  await within(closing, 5000, "close()");
  await within(server.finished, 100, "finished");
  const infos = await Promise.all(clients.map((client) => client.closed));
  for (const info of infos) assert.deepEqual(info, { code: 1001, reason: "going away" });
  assert.equal(handlersEnded, 50);
  assert.equal(abortedSignals, 50);
  assert.equal(server.connections.size, 0);
  assert.equal(server.runningHandlers, 0);
  assert.ok(await upgradeRefused(server.addr.port), "nothing listens after close");
});

test("signal.abort() shuts down gracefully, like close()", async () => {
  const controller = new AbortController();
  const server = startServer(echo, { signal: controller.signal });
  const client = await TestClient.open(server.url);
  controller.abort();
  await within(server.finished, 5000, "finished");
  assert.deepEqual(await client.closed, { code: 1001, reason: "going away" });
});

test("an already-aborted signal closes the server at once", async () => {
  const server = startServer(echo, { signal: AbortSignal.abort() });
  await within(server.finished, 5000, "finished");
});

test("close({ closeConnections: false }) stops accepting but keeps connections until they end", async () => {
  const server = startServer(echo);
  const client = await TestClient.open(server.url);
  const closing = server.close({ closeConnections: false });
  let finished = false;
  closing.then(() => finished = true);
  assert.ok(await upgradeRefused(server.addr.port), "new upgrades are refused");
  client.send("still served");
  assert.equal(await client.next(), "still served");
  await delay(100);
  assert.equal(finished, false, "waits for the open connection");
  client.close(1000);
  await within(closing, 5000, "close() after the client left");
  assert.equal(server.connections.size, 0);
});

test("close({ code: 1012 }) tells clients to reconnect elsewhere", async () => {
  const server = startServer(echo);
  const client = await TestClient.open(server.url);
  await server.close({ code: 1012 });
  assert.equal((await client.closed).code, 1012);
});

test("await using closes the server on scope exit", async () => {
  let client: TestClient;
  {
    await using server = startServer(echo);
    client = await TestClient.open(server.url);
  }
  assert.deepEqual(await client.closed, { code: 1001, reason: "going away" });
});

test("a handler that ignores the close is not waited for past closeTimeout", async () => {
  const server = startServer(async () => {
    await new Promise(() => {}); // never returns
  }, { closeTimeout: 300 });
  const client = await TestClient.open(server.url);
  const start = performance.now();
  await within(server.close(), 3000, "close()");
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 300 && elapsed < 2000, `close() took ${elapsed.toFixed(0)} ms`);
  assert.equal(server.runningHandlers, 1);
  assert.equal((await client.closed).code, 1001);
});

test("a full drain with an unresponsive peer fits a 5-second grace period (closeTimeout 3000)", async () => {
  const server = startServer(echo, { closeTimeout: 3000 });
  const good = await TestClient.open(server.url);
  const dead = await rawWebSocket(server.addr.port); // never answers the close frame
  const start = performance.now();
  await within(server.close(), 5000, "drain");
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 5000, `drain took ${elapsed.toFixed(0)} ms`);
  assert.equal((await good.closed).code, 1001);
  assert.equal(server.connections.size, 0);
  dead.destroy();
});

test(
  "after shutdown the process exits by itself: no timers or sockets left",
  { timeout: 30_000 },
  async () => {
    const fixture = new URL("./fixtures/shutdown_exit.ts", import.meta.url).pathname;
    const args = runArgs(fixture);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (chunk) => output += chunk);
    const code = await within(
      new Promise<number | null>((resolve) => child.once("exit", resolve)),
      20_000,
      "the process to exit by itself",
    ).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.equal(code, 0);
    const result = JSON.parse(output.trim().split("\n").at(-1)!);
    assert.equal(result.codes.length, 50);
    assert.ok(result.codes.every((c: number) => c === 1001), JSON.stringify(result.codes));
    assert.equal(result.connections, 0);
  },
);

test("serve() without a port override listens where asked and closes", async () => {
  const probe = serve(echo, { hostname: "127.0.0.1", port: 0 });
  assert.ok(probe.addr.port > 0);
  await probe.close();
  await probe.finished;
});
