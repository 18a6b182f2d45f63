import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { type CloseInfo, type Connection, serve } from "../mod.ts";
import { delay, startServer, TestClient, waitFor, within } from "./helpers.ts";
import { RawPeer, rawRequest, UPGRADE_HEADERS } from "./raw.ts";

const isBun = "Bun" in globalThis;
const GOING_AWAY = { code: 1001, reason: "going away" };
import { runArgs } from "./runtime.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/**
 * What a new upgrade gets: the status ("503"), or the connection error's code
 * ("ECONNREFUSED": no listener). Any other error fails the test.
 */
async function upgradeAnswer(port: number): Promise<string> {
  try {
    const response = await rawRequest(port);
    response.socket.destroy();
    return String(response.status);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ECONNREFUSED") return code;
    throw error;
  }
}

/** While draining: 503, or no listener at all (Bun stops listening when the shutdown starts). */
const REFUSED_WHILE_CLOSING = ["503", "ECONNREFUSED"];

/**
 * A handler that echoes, then records how the connection closed as the
 * handler saw it; `ended` counts the handlers that have returned.
 */
function recordingHandler() {
  const state = { seen: [] as CloseInfo[], aborted: 0, ended: 0 };
  const handler = async (ws: Connection) => {
    try {
      await echo(ws); // ends on 1000, 1001 and 1005; throws ConnectionClosedError on other codes
    } finally {
      if (ws.signal.aborted) state.aborted++;
      state.seen.push(await ws.closed);
      state.ended++;
    }
  };
  return { state, handler };
}

test("close(): 50 peers get 1001 from wsport, handlers see it, and finished resolves only once all is done", async () => {
  const { state, handler } = recordingHandler();
  // The default closeTimeout (10 s): a drain that waited for it, or for the listener's own
  // close of the sockets, would miss the deadlines below.
  const server = startServer(handler);
  const peers = await Promise.all(Array.from({ length: 50 }, () => RawPeer.open(server.addr.port)));
  await waitFor(() => server.connections.size === 50, 5000, "50 connections");
  // The state at the moment finished resolves, not some time later.
  const atFinished = server.finished.then(() => ({
    connections: server.connections.size,
    runningHandlers: server.runningHandlers,
    handlersEnded: state.ended,
    handlersSawGoingAway:
      state.seen.filter((info) => info.code === 1001 && info.reason === "going away").length,
  }));
  const closing = server.close();
  const answer = await upgradeAnswer(server.addr.port);
  assert.ok(REFUSED_WHILE_CLOSING.includes(answer), `a new upgrade while closing got ${answer}`);
  assert.deepEqual(await within(atFinished, 3000, "finished"), {
    connections: 0,
    runningHandlers: 0,
    handlersEnded: 50,
    handlersSawGoingAway: 50,
  });
  await within(closing, 100, "close(), with finished");
  assert.equal(state.aborted, 50);
  // Every peer got wsport's close frame (the runtimes' own would say "Server closed" or
  // "Server shutting down"), and TCP ended.
  for (const peer of peers) {
    const end = await peer.end(2000);
    assert.deepEqual({ code: end.closeCode, reason: end.closeReason }, GOING_AWAY);
    assert.notEqual(end.tcp, "open");
  }
  assert.equal(await upgradeAnswer(server.addr.port), "ECONNREFUSED", "nothing listens after close");
});

test("an upgrade still in processRequest when the shutdown starts is refused 503", async () => {
  const arrived = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const server = startServer(async (ws) => {
    await ws.closed;
    await release.promise; // keeps the drain going until the test has its answer
  }, {
    async processRequest(request) {
      if (new URL(request.url).pathname !== "/slow") return;
      arrived.resolve();
      await gate.promise;
    },
  });
  try {
    const client = await TestClient.open(server.url);
    const pending = rawRequest(server.addr.port, UPGRADE_HEADERS, { path: "/slow" });
    await within(arrived.promise, 5000, "the slow upgrade to reach processRequest");
    const closing = server.close();
    assert.deepEqual(await client.closed, GOING_AWAY);
    gate.resolve();
    const response = await pending;
    response.socket.destroy();
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.match(response.rest.toString(), /^503 Service Unavailable/);
    assert.equal(server.counters.refused.shuttingDown, 1);
    assert.equal(server.counters.accepted, 1);
    release.resolve();
    await within(closing, 5000, "close()");
  } finally {
    gate.resolve();
    release.resolve();
    await server.close();
  }
});

test("signal.abort() shuts down gracefully, like close()", async () => {
  const { state, handler } = recordingHandler();
  const controller = new AbortController();
  const server = startServer(handler, { signal: controller.signal });
  const client = await TestClient.open(server.url);
  await waitFor(() => server.connections.size === 1, 5000, "the connection");
  const atFinished = server.finished.then(() => ({
    connections: server.connections.size,
    ended: state.ended,
  }));
  controller.abort();
  assert.deepEqual(await within(atFinished, 3000, "finished"), { connections: 0, ended: 1 });
  assert.deepEqual(state.seen, [GOING_AWAY]);
  assert.deepEqual(await client.closed, GOING_AWAY);
});

test("an already-aborted signal closes the server at once", async () => {
  const server = startServer(echo, { signal: AbortSignal.abort() });
  await within(server.finished, 5000, "finished");
  assert.equal(await upgradeAnswer(server.addr.port), "ECONNREFUSED");
});

test("close({ closeConnections: false }) stops accepting but keeps connections until they end", async () => {
  const { state, handler } = recordingHandler();
  const server = startServer(handler);
  const client = await TestClient.open(server.url);
  const closing = server.close({ closeConnections: false });
  let finished = false;
  closing.then(() => finished = true);
  const answer = await upgradeAnswer(server.addr.port);
  assert.ok(REFUSED_WHILE_CLOSING.includes(answer), `a new upgrade while closing got ${answer}`);
  client.send("still served");
  assert.equal(await client.next(), "still served");
  await delay(100);
  assert.equal(finished, false, "waits for the open connection");
  client.close(1000, "done");
  await within(closing, 5000, "close() after the client left");
  assert.equal(server.connections.size, 0);
  assert.deepEqual(state.seen, [{ code: 1000, reason: "done" }]);
});

test("close({ code: 1012 }) tells clients to reconnect elsewhere", async () => {
  const { state, handler } = recordingHandler();
  const server = startServer(handler);
  const client = await TestClient.open(server.url);
  await waitFor(() => server.connections.size === 1, 5000, "the connection");
  await within(server.close({ code: 1012 }), 3000, "close()");
  assert.deepEqual(state.seen, [{ code: 1012, reason: "" }]);
  assert.deepEqual(await client.closed, { code: 1012, reason: "" });
});

test("await using closes the server on scope exit", async () => {
  const { state, handler } = recordingHandler();
  let client: TestClient;
  {
    await using server = startServer(handler);
    client = await TestClient.open(server.url);
    await waitFor(() => server.connections.size === 1, 5000, "the connection");
  }
  assert.deepEqual(state.seen, [GOING_AWAY], "the handler saw the close before the scope was left");
  assert.deepEqual(await client.closed, GOING_AWAY);
});

test("a handler that ignores the close is not waited for past closeTimeout", async () => {
  const server = startServer(async () => {
    await new Promise(() => {}); // never returns
  }, { closeTimeout: 300 });
  const client = await TestClient.open(server.url);
  await waitFor(() => server.connections.size === 1, 5000, "the connection");
  const start = performance.now();
  await within(server.close(), 3000, "close()");
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 300 && elapsed < 2000, `close() took ${elapsed.toFixed(0)} ms`);
  assert.equal(server.runningHandlers, 1);
  assert.equal(server.connections.size, 0);
  assert.deepEqual(await client.closed, GOING_AWAY);
});

test("a full drain with an unresponsive peer fits a 5-second grace period (closeTimeout 3000)", async () => {
  const { state, handler } = recordingHandler();
  const server = startServer(handler, { closeTimeout: 3000 });
  const good = await TestClient.open(server.url);
  const dead = await RawPeer.open(server.addr.port);
  dead.answerClose = false; // never answers the close frame
  await waitFor(() => server.connections.size === 2, 5000, "two connections");
  const start = performance.now();
  await within(server.close(), 5000, "drain");
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 5000, `drain took ${elapsed.toFixed(0)} ms`);
  // Deno waits closeTimeout for the answer, then lets go; Bun drops the peer when it sends the close.
  if (!isBun) assert.ok(elapsed >= 2900, `the unresponsive peer was let go after ${elapsed.toFixed(0)} ms`);
  assert.deepEqual(await good.closed, GOING_AWAY);
  assert.deepEqual(dead.closeFrame, GOING_AWAY);
  assert.equal(server.connections.size, 0);
  assert.equal(state.ended, 2);
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
    assert.equal(result.closes.length, 50);
    for (const close of result.closes) assert.deepEqual(close, GOING_AWAY);
    assert.equal(result.connections, 0);
    assert.equal(result.handlersEnded, 50);
  },
);

test("serve() without a port override listens where asked and closes", async () => {
  const probe = serve(echo, { hostname: "127.0.0.1", port: 0 });
  assert.ok(probe.addr.port > 0);
  await within(probe.close(), 5000, "close()");
  await within(probe.finished, 100, "finished");
});
