/**
 * The server side of bench/slow_consumer.ts: sends 16 KiB binary chunks as
 * fast as the handler may to every client, for DURATION ms, then prints how
 * much it sent. MODE=raw uses the runtime's own API, MODE=wsport uses serve().
 * Run by the bench under Deno or Bun; prints "port N" once listening.
 */
import process from "node:process";
import { serve } from "../mod.ts";

const mode = process.env.MODE ?? "wsport";
const duration = Number(process.env.DURATION ?? 3000);
const chunk = new Uint8Array(16 * 1024).fill(1);
const report = (sent: number, dropped = 0) =>
  console.log(JSON.stringify({ sentMiB: +(sent * chunk.byteLength / 2 ** 20).toFixed(1), dropped }));

/** A raw loop: what a handler written against the runtime's API does. */
async function rawFirehose(send: (data: Uint8Array) => number | void) {
  const deadline = Date.now() + duration;
  let sent = 0;
  let dropped = 0;
  while (Date.now() < deadline) {
    const result = send(chunk);
    if (result === 0) dropped++; // Bun drops past its backpressureLimit
    else sent++;
    await null; // yields to microtasks only, as `await ws.send()` on a void send does
  }
  report(sent, dropped);
}

if (mode === "wsport") {
  let sent = 0;
  const server = serve(async (ws) => {
    // The report comes from a timer: the event loop stays free while send() waits.
    setTimeout(() => report(sent), duration);
    while (!ws.signal.aborted) {
      await ws.send(chunk);
      sent++;
    }
  }, { hostname: "127.0.0.1", port: 0 });
  console.log(`port ${server.addr.port}`);
} else if ("Bun" in globalThis) {
  const Bun = (globalThis as unknown as { Bun: { serve(options: unknown): { port: number } } }).Bun;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request: Request, server: { upgrade(r: Request): boolean }) =>
      server.upgrade(request) ? undefined : new Response("upgrade", { status: 426 }),
    websocket: {
      open: (ws: { send(d: Uint8Array): number }) => rawFirehose((data) => ws.send(data)),
      message() {},
    },
  });
  console.log(`port ${server.port}`);
} else {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => rawFirehose((data) => socket.send(data));
    return response;
  });
  console.log(`port ${server.addr.port}`);
}
