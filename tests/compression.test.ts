/**
 * The `compression` option: permessage-deflate (RFC 7692) on the ws engine
 * and on Bun, off by default, ignored by Deno's native engine. Checked over
 * raw TCP, where the extension header and the RSV1 bit can be seen, with
 * node:zlib doing the client's side.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import { type Connection, ConnectionClosed } from "../mod.ts";
import { startServer, TestClient, within } from "./helpers.ts";
import { frame, RawPeer, UPGRADE_HEADERS } from "./raw.ts";
import { engine } from "./runtime.ts";

const OFFER = {
  ...UPGRADE_HEADERS,
  "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
};
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const compresses = engine !== "deno";

/** A message as RFC 7692 §7.2.1 compresses it: raw deflate, flushed, without the trailing empty block. */
function compress(data: string | Uint8Array): Buffer {
  const deflated = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return deflated.subarray(0, deflated.length - 4);
}

function inflate(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

const echo = async (ws: Connection) => {
  for await (const message of ws) await ws.send(message);
};

test("compression is off by default: an offer gets no extension", async () => {
  await using server = startServer(echo);
  const peer = await RawPeer.open(server.addr.port, OFFER);
  assert.equal(peer.headers.get("sec-websocket-extensions"), null);
  peer.write(frame(1, "plain"));
  const echoed = await peer.next();
  assert.equal(echoed?.rsv, 0);
  assert.equal(echoed?.payload.toString(), "plain");
  peer.destroy();
});

test("compression: true negotiates permessage-deflate (Deno's native engine ignores it)", async () => {
  await using server = startServer(echo, { compression: true });
  const peer = await RawPeer.open(server.addr.port, OFFER);
  const extensions = peer.headers.get("sec-websocket-extensions");
  if (!compresses) {
    assert.equal(extensions, null);
    peer.destroy();
    return;
  }
  assert.match(extensions ?? "", /^permessage-deflate/);
  const text = "compressible text, ".repeat(500); // 9.5 KB
  // The client sends it compressed (RSV1), the server inflates it and echoes it compressed.
  peer.write(frame(1, compress(text), { rsv: 4 }));
  const echoed = await peer.next();
  assert.equal(echoed?.opcode, 1);
  assert.equal(echoed?.rsv, 4, "the echo was not compressed");
  assert.ok(echoed!.payload.length < text.length / 10, `${echoed!.payload.length} bytes on the wire`);
  assert.equal(inflate(echoed!.payload).toString(), text);
  // An uncompressed frame is still fine (RFC 7692 §6: RSV1 clear).
  peer.write(frame(2, new Uint8Array([1, 2, 3])));
  const binary = await peer.next();
  assert.deepEqual([...(binary!.rsv ? inflate(binary!.payload) : binary!.payload)], [1, 2, 3]);
  peer.destroy();
});

test("compression: a standard client and a large message round-trip", async () => {
  await using server = startServer(echo, { compression: true });
  const client = await TestClient.open(server.url);
  const text = "round trip ".repeat(20_000);
  client.send(text);
  assert.equal(await client.next(), text);
  const bytes = new Uint8Array(100_000).map((_, i) => i % 7);
  client.send(bytes);
  assert.deepEqual(await client.next(), bytes);
  client.close();
});

test("compression: a message that inflates past maxMessageSize is closed with 1009 (a deflate bomb)", {
  skip: compresses ? false : "Deno's native engine does not compress",
}, async () => {
  const ended = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws) => {
    try {
      await echo(ws);
      ended.resolve("returned");
    } catch (error) {
      ended.resolve(error);
    }
  }, { compression: true, maxMessageSize: 1024 * 1024 });
  const peer = await RawPeer.open(server.addr.port, OFFER);
  const bomb = compress(new Uint8Array(64 * 1024 * 1024)); // 64 MiB of zeros in about 64 KiB
  assert.ok(bomb.length < 128 * 1024);
  peer.write(frame(2, bomb, { rsv: 4 }));
  const end = await peer.end();
  assert.equal(end.closeCode, 1009);
  const error = await within(ended.promise, 5000, "the handler's end");
  assert.ok(error instanceof ConnectionClosed, String(error));
  assert.equal(error.code, 1009);
  assert.equal(server.counters.closed.messageTooBig, 1);
});
