// Server lifecycle as a load balancer and an operator see it: what a draining
// server answers, when its port closes, whether the process exits after
// shutdown, what address it reports, and how health checks are counted.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { type Connection, serve, type ServerCounters } from "../mod.ts";
import { startNonReader, startServer, TestClient, within } from "./helpers.ts";
import { rawRequest } from "./raw.ts";
import { engine, noURLPattern, runArgs } from "./runtime.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** Answers health checks itself, refuses /private with 401, redirects /old; lets the rest upgrade. */
function processRequest(request: Request): Response | undefined {
  const { pathname } = new URL(request.url);
  if (pathname === "/healthz") return new Response("OK");
  if (pathname === "/private") return new Response("unauthorized", { status: 401 });
  if (pathname === "/old") return new Response(null, { status: 302, headers: { location: "/" } });
}

/** The status of one request over raw TCP (an upgrade unless `headers` is given); the socket is closed after. */
async function statusOf(port: number, path = "/", headers?: Record<string, string>): Promise<number> {
  const response = await rawRequest(port, headers, { path });
  response.socket.destroy();
  return response.status;
}

/** Resolves once nothing listens on the port any more (a connection attempt is refused). */
function refused(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      reject(new Error(`port ${port} still accepts connections`));
    });
    socket.once("error", (error: Error & { code?: string }) => resolve(error.code ?? String(error)));
  });
}

/** What a draining server answers: 503 to an upgrade, the hook's 200 to a health check. */
async function assertDraining(port: number): Promise<void> {
  assert.equal(await statusOf(port, "/"), 503, "an upgrade while draining gets 503");
  assert.equal(await statusOf(port, "/healthz", {}), 200, "processRequest still answers health checks");
}

test("close({ closeConnections: false }): 503 and health checks while draining, port closed after", async () => {
  const server = startServer(echo, { processRequest });
  const client = await TestClient.open(server.url);
  const closing = server.close({ closeConnections: false });
  await assertDraining(server.addr.port);
  assert.equal(server.counters.refused.shuttingDown, 1);
  assert.equal(server.counters.answered, 1);
  client.send("still served");
  assert.equal(await client.next(), "still served");
  client.close(1000);
  await within(closing, 5000, "close() after the client left");
  assert.equal(await within(refused(server.addr.port), 5000, "refused"), "ECONNREFUSED");
});

test("signal.abort() with a handler still running: 503 and health checks while draining, port closed after", async () => {
  const controller = new AbortController();
  const release = Promise.withResolvers<void>();
  const server = startServer(async (ws) => {
    await echo(ws);
    await release.promise; // keeps running after its connection has closed: the drain waits for it
  }, { processRequest, signal: controller.signal });
  const client = await TestClient.open(server.url);
  controller.abort();
  assert.equal((await within(client.closed, 5000, "client close")).code, 1001);
  assert.equal(server.runningHandlers, 1);
  await assertDraining(server.addr.port);
  release.resolve();
  await within(server.finished, 5000, "finished once the handler returned");
  assert.equal(await within(refused(server.addr.port), 5000, "refused"), "ECONNREFUSED");
});

test("a path no route matches gets 503, not 404, while draining", { skip: noURLPattern }, async () => {
  const server = startServer({ "/chat": echo }, { processRequest });
  const client = await TestClient.open(`${server.url}/chat`);
  const closing = server.close({ closeConnections: false });
  assert.equal(await statusOf(server.addr.port, "/nowhere"), 503);
  assert.equal(await statusOf(server.addr.port, "/healthz", {}), 200);
  client.close(1000);
  await within(closing, 5000, "close()");
});

test("counters: a 2xx/3xx answer of processRequest is counted as answered, a 4xx as a refusal", async () => {
  await using server = startServer(echo, { processRequest });
  const expected: ServerCounters = structuredClone(server.counters);
  assert.equal(await statusOf(server.addr.port, "/healthz", {}), 200);
  expected.answered++;
  assert.deepEqual(server.counters, expected, "a health check is an answer");
  assert.equal(await statusOf(server.addr.port, "/old"), 302);
  expected.answered++;
  assert.deepEqual(server.counters, expected, "a redirect is an answer");
  assert.equal(await statusOf(server.addr.port, "/private"), 401);
  expected.refused.processRequest++;
  assert.deepEqual(server.counters, expected, "a 401 is a refusal");
});

test("the default bind reports the bound address, the same on every runtime, and accepts there", async () => {
  await using server = serve(echo, { port: 0 });
  // `localhost` resolves to 127.0.0.1 on most systems (::1 on some): the address, never the name.
  assert.ok(["127.0.0.1", "::1"].includes(server.addr.hostname), `addr.hostname is ${server.addr.hostname}`);
  await using named = serve(echo, { hostname: "localhost", port: 0 });
  assert.equal(named.addr.hostname, server.addr.hostname);
  const socket = await within(
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(server.addr.port, server.addr.hostname, () => resolve(socket));
      socket.once("error", reject);
    }),
    5000,
    "a connection at the reported address",
  );
  socket.destroy();
});

/** Collects a child's stdout; `line` waits for a line matching `pattern`. */
function watchOutput(child: ChildProcess) {
  let output = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (chunk) => {
    output += chunk;
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    text: () => output,
    async line(pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
      const found = () => output.split("\n").map((line) => line.match(pattern)).find((match) => match);
      return await within(
        (async () => {
          let match;
          while (!(match = found())) await new Promise<void>((resolve) => waiters.push(resolve));
          return match;
        })(),
        ms,
        `a line matching ${pattern} (output so far: ${JSON.stringify(output)})`,
      );
    },
  };
}

test(
  "after SIGTERM with a peer that stopped reading, finished resolves at closeTimeout and the process exits",
  { timeout: 30_000 },
  async () => {
    const closeTimeout = 1000; // as in the fixture
    const fixture = new URL("./fixtures/stalled_peer_exit.ts", import.meta.url).pathname;
    const args = runArgs(fixture);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const output = watchOutput(child);
    let peer: { kill(): Promise<void> } | undefined;
    try {
      const port = Number((await output.line(/^port (\d+)$/, 15_000))[1]);
      peer = await startNonReader(port);
      await output.line(/^stalled$/, 10_000); // the handler waits in send() on the non-reader
      child.kill("SIGTERM");
      await output.line(/^finished$/, closeTimeout + 2000);
      const exitedAlone = await within(exited, closeTimeout + 2000, "exit").then(() => true, () => false);
      if (!exitedAlone && engine === "deno") {
        // Deno 2.9's native engine (docs/shutdown-and-deployment.md): the Close frame's write waits behind
        // writes the peer does not read, and that pending write holds the process until the peer leaves.
        await peer.kill();
        await within(exited, 2000, "exit once the peer left");
      } else {
        assert.ok(exitedAlone, "the process exits by itself while the peer is still connected");
      }
      // A Deno parent's node:child_process reports a child it signalled as killed by that signal.
      const code = await exited;
      if (code !== null) assert.equal(code, 0);
    } finally {
      child.kill("SIGKILL");
      await peer?.kill();
    }
  },
);
