/**
 * RFC 6455 §7.4.1 close codes for protocol errors, over raw TCP: a peer that
 * breaks the framing gets a valid close frame with 1002 (protocol error) or
 * 1007 (invalid data) before TCP ends, on the ws engine and on Bun. Deno's
 * native engine drops TCP instead, and answers an over-long close frame with
 * an equally over-long one: pinned here too, as the README's engine table says.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Connection, ConnectionClosedError } from "../../mod.ts";
import { startServer, TestClient, waitFor, within } from "../helpers.ts";
import { closePayload, frame, RawPeer } from "../raw.ts";
import { engine } from "../runtime.ts";

interface Case {
  name: string;
  frames: () => Uint8Array[];
  /** The close code RFC 6455 asks for. */
  code: 1002 | 1007;
}

const CASES: Case[] = [
  { name: "an unmasked client frame", frames: () => [frame(1, "x", { mask: false })], code: 1002 },
  {
    name: "invalid UTF-8 in a text frame",
    frames: () => [frame(1, new Uint8Array([0x68, 0xff]))],
    code: 1007,
  },
  { name: "RSV2 set", frames: () => [frame(1, "x", { rsv: 2 })], code: 1002 },
  { name: "RSV3 set", frames: () => [frame(1, "x", { rsv: 1 })], code: 1002 },
  {
    name: "a 126-byte close frame",
    frames: () => [frame(8, Buffer.concat([Buffer.from(closePayload(1000)), Buffer.alloc(124, 0x61)]))],
    code: 1002,
  },
  { name: "a 126-byte ping", frames: () => [frame(9, new Uint8Array(126))], code: 1002 },
  { name: "a fragmented ping", frames: () => [frame(9, "x", { fin: false })], code: 1002 },
  { name: "the reserved opcode 3", frames: () => [frame(3, "x")], code: 1002 },
  { name: "a continuation with no message started", frames: () => [frame(0, "x")], code: 1002 },
  {
    name: "a new message inside a fragmented one",
    frames: () => [frame(1, "a", { fin: false }), frame(1, "b")],
    code: 1002,
  },
  {
    name: "a close reason that is not UTF-8",
    frames: () => [frame(8, Buffer.concat([Buffer.from(closePayload(1000)), Buffer.from([0xff])]))],
    code: 1007,
  },
];

/** Echo handler that records how the first connection ended. */
function recording() {
  const first = Promise.withResolvers<unknown>();
  let count = 0;
  const handler = async (ws: Connection) => {
    const observe = count++ === 0;
    try {
      for await (const message of ws) await ws.send(message);
      if (observe) first.resolve("returned");
    } catch (error) {
      if (observe) first.resolve(error);
    }
  };
  return { handler, ended: () => within(first.promise, 5000, "the handler's end") };
}

for (const { name, frames, code } of CASES) {
  const delivered = engine === "deno" && name === "an unmasked client frame";
  // One name on every engine, so that every runtime reports the same tests.
  test(`${name}: closed with ${code} (Deno's native engine drops TCP)`, {
    skip: delivered ? "Deno's native engine delivers it (frames.test.ts)" : false,
  }, async () => {
    const { handler, ended } = recording();
    const reported: unknown[] = [];
    await using server = startServer(handler, { onError: (error) => void reported.push(error) });
    const peer = await RawPeer.open(server.addr.port);
    for (const data of frames()) peer.write(data);
    const end = await peer.end();
    const close = end.frames.find((received) => received.opcode === 8);
    assert.notEqual(end.tcp, "open", "the server kept TCP open");
    if (engine === "deno") {
      if (name === "a 126-byte close frame") {
        // Echoed as it came: a close frame RFC 6455 §5.5 forbids, with 1000.
        assert.equal(close?.payload.length, 126);
        assert.equal(end.closeCode, 1000);
      } else {
        assert.equal(close, undefined, `unexpected close frame ${end.closeCode}`);
      }
    } else {
      assert.equal(end.closeCode, code, `close frame: ${JSON.stringify(end.closeReason)}`);
      assert.ok(
        close!.payload.length <= 125,
        `the server's own close frame has ${close!.payload.length} bytes`,
      );
      assert.ok(!end.frames.some((received) => received.opcode !== 8), "data was echoed");
      // No valid close frame came from the peer: an abnormal closure for the handler.
      const error = await ended();
      assert.ok(error instanceof ConnectionClosedError, String(error));
      assert.equal(error.code, 1006);
    }
    await waitFor(() => server.connections.size === 0, 5000, "the registry to empty");
    assert.deepEqual(reported, []);
    const client = await TestClient.open(server.url);
    client.send("still serving");
    assert.equal(await client.next(), "still serving");
    client.close();
  });
}
