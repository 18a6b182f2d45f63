/**
 * RFC 6455 §4.2.1 handshake validation over raw TCP: every refusal has an
 * exact status and headers, is counted by reason, creates no connection, and
 * leaves the server echoing the next good client. Then slowloris: peers that
 * never finish the request head must not slow a good client down.
 *
 * wsport validates before calling the runtime's upgrade, so Deno and Bun give
 * the same answers; nothing here branches on the runtime.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { Connection, RefusalReason, ServeOptions } from "../../mod.ts";
import { delay, startServer, TestClient, waitFor, within } from "../helpers.ts";
import { closePayload, frame, RawPeer, rawRequest, UPGRADE_HEADERS } from "../raw.ts";

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

/** RFC 6455 §1.3: the accept value for the sample key in UPGRADE_HEADERS. */
const SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

type Server = ReturnType<typeof startServer>;

/** A good client gets through and is echoed at once; returns the round trip in ms. */
async function assertEchoesGoodClient(server: Server): Promise<number> {
  const client = await within(TestClient.open(server.url), 2000, "a good client's handshake");
  const start = performance.now();
  client.send("good client");
  assert.equal(await client.next(1000), "good client");
  const ms = performance.now() - start;
  client.close(1000);
  assert.equal((await client.closed).code, 1000);
  await waitFor(() => server.connections.size === 0, 5000, "the good client to leave");
  return ms;
}

/** Refused counters: all zero but `reason`, which is `count`. */
function onlyRefused(server: Server, reason: RefusalReason, count = 1): Record<string, number> {
  return Object.fromEntries(
    Object.keys(server.counters.refused).map((key) => [key, key === reason ? count : 0]),
  );
}

interface RefusalCase {
  name: string;
  headers: Record<string, string | undefined>;
  method?: string;
  options?: ServeOptions;
  status: number;
  reason: RefusalReason;
  /** Response headers that must have exactly these values (null: absent). */
  expect?: Record<string, string | null>;
}

const H = UPGRADE_HEADERS;

const REFUSALS: RefusalCase[] = [
  { name: "POST with an upgrade", method: "POST", headers: H, status: 405, reason: "methodNotAllowed" },
  { name: "PUT with an upgrade", method: "PUT", headers: H, status: 405, reason: "methodNotAllowed" },
  { name: "Upgrade: h2c", headers: { ...H, Upgrade: "h2c" }, status: 400, reason: "badRequest" },
  {
    name: "Upgrade: websocketx",
    headers: { ...H, Upgrade: "websocketx" },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Connection: keep-alive alone",
    headers: { ...H, Connection: "keep-alive" },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Connection: upgrades",
    headers: { ...H, Connection: "upgrades" },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "no Connection header",
    headers: { ...H, Connection: undefined },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "no Upgrade header",
    headers: { ...H, Upgrade: undefined },
    status: 426,
    reason: "upgradeRequired",
    expect: { upgrade: "websocket" },
  },
  {
    name: "Sec-WebSocket-Key missing",
    headers: { ...H, "Sec-WebSocket-Key": undefined },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Sec-WebSocket-Key not base64",
    headers: { ...H, "Sec-WebSocket-Key": "not*base64*at*all*!!!==" },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Sec-WebSocket-Key of 15 bytes",
    headers: { ...H, "Sec-WebSocket-Key": btoa("0123456789abcde") },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Sec-WebSocket-Key of 17 bytes",
    headers: { ...H, "Sec-WebSocket-Key": btoa("0123456789abcdefg") },
    status: 400,
    reason: "badRequest",
  },
  {
    // Two header lines are combined as "a, b", which is no base64 key.
    name: "Sec-WebSocket-Key sent twice",
    headers: { ...H, "sec-websocket-key": btoa("0123456789abcdef") },
    status: 400,
    reason: "badRequest",
  },
  {
    name: "Sec-WebSocket-Version: 8",
    headers: { ...H, "Sec-WebSocket-Version": "8" },
    status: 426,
    reason: "unsupportedVersion",
    expect: { "sec-websocket-version": "13" },
  },
  {
    name: "Sec-WebSocket-Version missing",
    headers: { ...H, "Sec-WebSocket-Version": undefined },
    status: 426,
    reason: "unsupportedVersion",
    expect: { "sec-websocket-version": "13" },
  },
  {
    name: "an Origin not allowed",
    headers: { ...H, Origin: "https://evil.example" },
    options: { origins: ["https://app.example"] },
    status: 403,
    reason: "forbiddenOrigin",
  },
];

for (const c of REFUSALS) {
  test(`handshake: ${c.name} → ${c.status}, counted as ${c.reason}, no connection`, async () => {
    await using server = startServer(echo, c.options);
    const response = await rawRequest(server.addr.port, c.headers, { method: c.method });
    assert.equal(response.status, c.status);
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(response.headers.get("sec-websocket-accept"), null);
    if (c.status === 405) assert.equal(response.headers.get("allow"), "GET");
    else assert.equal(response.headers.get("allow"), null);
    if (c.reason !== "unsupportedVersion") assert.equal(response.headers.get("sec-websocket-version"), null);
    for (const [name, value] of Object.entries(c.expect ?? {})) {
      assert.equal(response.headers.get(name), value);
    }
    response.socket.destroy();
    await delay(20); // nothing may open late
    assert.equal(server.connections.size, 0);
    assert.equal(server.counters.accepted, 0);
    assert.deepEqual(server.counters.refused, onlyRefused(server, c.reason));
    if (c.options?.origins) {
      // The allowed origin still gets through.
      const peer = await RawPeer.open(server.addr.port, { ...H, Origin: "https://app.example" });
      peer.write(frame(1, "allowed"));
      assert.equal((await peer.next())?.payload.toString(), "allowed");
      peer.destroy();
      await waitFor(() => server.connections.size === 0, 5000, "the allowed peer to leave");
    } else {
      await assertEchoesGoodClient(server);
    }
  });
}

interface AcceptCase {
  name: string;
  headers: Record<string, string | undefined>;
}

const ACCEPTED: AcceptCase[] = [
  { name: "the RFC 6455 sample handshake", headers: H },
  { name: "Upgrade: WebSocket (tokens are case-insensitive)", headers: { ...H, Upgrade: "WebSocket" } },
  { name: "Upgrade: h2c, websocket", headers: { ...H, Upgrade: "h2c, websocket" } },
  { name: "Connection: keep-alive, Upgrade", headers: { ...H, Connection: "keep-alive, Upgrade" } },
  { name: "Connection: UPGRADE", headers: { ...H, Connection: "UPGRADE" } },
  {
    name: "an offered permessage-deflate (declined)",
    headers: { ...H, "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" },
  },
];

for (const c of ACCEPTED) {
  test(`handshake: ${c.name} → 101 and an echo`, async () => {
    await using server = startServer(echo);
    const peer = await RawPeer.open(server.addr.port, c.headers);
    assert.equal(peer.headers.get("upgrade")?.toLowerCase(), "websocket");
    assert.equal(peer.headers.get("connection")?.toLowerCase(), "upgrade");
    assert.equal(peer.headers.get("sec-websocket-accept"), SAMPLE_ACCEPT);
    assert.equal(peer.headers.get("sec-websocket-protocol"), null);
    assert.equal(peer.headers.get("sec-websocket-extensions"), null);
    peer.write(frame(1, "over raw TCP"));
    const echoed = await peer.next();
    assert.equal(echoed?.opcode, 1);
    assert.equal(echoed?.masked, false); // servers never mask (RFC 6455 §5.1)
    assert.equal(echoed?.rsv, 0);
    assert.equal(echoed?.payload.toString(), "over raw TCP");
    peer.write(frame(8, closePayload(1000)));
    assert.equal((await peer.end()).closeCode, 1000);
    await waitFor(() => server.connections.size === 0, 5000, "the peer to leave");
    assert.equal(server.counters.accepted, 1);
    assert.deepEqual(server.counters.refused, onlyRefused(server, "badRequest", 0));
    await assertEchoesGoodClient(server);
  });
}

test("handshake: every refusal on one server is counted by reason, and none opens a connection", async () => {
  await using server = startServer(echo, { origins: ["https://app.example", null] });
  const expected: Record<string, number> = onlyRefused(server, "badRequest", 0);
  for (const c of REFUSALS) {
    const response = await rawRequest(server.addr.port, c.headers, { method: c.method });
    assert.equal(response.status, c.status, c.name);
    response.socket.destroy();
    expected[c.reason]++;
  }
  await delay(20);
  assert.deepEqual(server.counters.refused, expected);
  assert.equal(server.counters.refused.badRequest, 10);
  assert.equal(server.counters.accepted, 0);
  assert.equal(server.connections.size, 0);
  await assertEchoesGoodClient(server);
  assert.equal(server.counters.accepted, 1);
});

test("slowloris: 200 peers that never finish the request head do not slow a good client", async () => {
  await using server = startServer(echo);
  const slow: net.Socket[] = [];
  const dropped: number[] = [];
  const start = Date.now();
  await Promise.all(Array.from({ length: 200 }, (_, i) =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(server.addr.port, "127.0.0.1");
      slow.push(socket);
      socket.on("error", () => {});
      socket.on("close", () => dropped.push(Date.now() - start));
      socket.once("connect", () => {
        // Half the peers stop inside the head, half after the request line.
        const head = i % 2 === 0
          ? `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upg`
          : `GET / HTTP/1.1\r\n`;
        socket.write(head, (error) => error ? reject(error) : resolve());
      });
    })));
  try {
    await delay(50);
    const handshakeStart = performance.now();
    const client = await within(TestClient.open(server.url), 2000, "a good client's handshake");
    const handshakeMs = performance.now() - handshakeStart;
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = performance.now();
      client.send(`round ${i}`);
      assert.equal(await client.next(1000), `round ${i}`);
      rtts.push(performance.now() - sent);
    }
    client.close(1000);
    await client.closed;
    rtts.sort((a, b) => a - b);
    const max = rtts[rtts.length - 1];
    console.log(
      `slowloris: 200 half-open peers; good client handshake ${handshakeMs.toFixed(1)} ms, echo round trip ` +
        `median ${rtts[10].toFixed(2)} ms, max ${max.toFixed(2)} ms; server dropped ${dropped.length} so far`,
    );
    assert.ok(max < 50, `echo round trip ${max.toFixed(1)} ms`);
    assert.ok(handshakeMs < 500, `handshake took ${handshakeMs.toFixed(1)} ms`);
    // Neither runtime answers or drops a half-open head this early (Bun drops them after ~10-12 s, Deno never).
    assert.equal(dropped.length, 0);
    assert.equal(server.counters.accepted, 1);
    assert.deepEqual(server.counters.refused, onlyRefused(server, "badRequest", 0));
  } finally {
    for (const socket of slow) socket.destroy();
  }
  await waitFor(() => server.connections.size === 0, 5000, "the good client to leave");
});
