/**
 * Soak test: a wsport server under mixed load for N minutes, in one process
 * on whichever runtime runs it.
 *
 *   deno run -A bench/soak.ts --minutes 1
 *   bun bench/soak.ts --minutes 1
 *
 * Load (each part can be resized by a flag of the same name):
 * - `--echo 20`: clients that send a message, await its echo, pause 10 ms, repeat
 *   (round trips give the latency columns);
 * - `--room 10`: clients in a room; one of them speaks every 100 ms and the
 *   server sends it to every room member in `server.connections`;
 * - `--churn 20`: connections per second that open, echo once and close;
 * - `--hostile 2`: hostile peers per second over raw TCP, in turn: a reset
 *   mid-frame, invalid UTF-8, a message over `maxMessageSize` (64 KiB) from a
 *   peer that never answers the close, a slowloris head held 5 s, a refused
 *   handshake, an unmasked frame.
 *
 * Every `--interval 10` seconds a row is printed: RSS, heap, open
 * connections, and what happened since the last row. At the end the load
 * stops, the server drains, and a verdict is printed: "RSS flat" or "RSS
 * growing", from the least-squares slope of RSS over the second half of the
 * run (the first half is warm-up: Deno's RSS climbs for ~30 s before it
 * levels off): growing when over 2 MiB/min and the growth over that window
 * exceeds 10 % of RSS. Short runs can only catch fast leaks; run 10+ minutes
 * for a slow one. Exits 0 when flat and the server stayed healthy (nothing
 * left open after the drain, no handler error), 1 otherwise.
 *
 * Each row is measured after a forced garbage collection: `Bun.gc(true)` on
 * Bun; on Deno the script runs itself again with `--v8-flags=--expose-gc`
 * (pass `--no-gc` to measure without).
 *
 * @module
 */
import net from "node:net";
import process from "node:process";
import { Buffer } from "node:buffer";
import { type Connection, serve } from "../mod.ts";

// ---------------------------------------------------------------- options

// On Deno, run again with the garbage collector exposed, so that every row
// is measured after a full collection as on Bun (one invocation either way).
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
if (deno && typeof (globalThis as { gc?: unknown }).gc !== "function" && !deno.args.includes("--no-gc")) {
  const child = new deno.Command(deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL(import.meta.url).pathname, ...deno.args, "--no-gc"],
    stdin: "null",
  }).spawn();
  deno.exit((await child.status).code);
}

function flag(name: string, fallback: number): number {
  const args = process.argv.slice(2).filter((arg) => arg !== "--no-gc");
  const index = args.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`soak: --${name} needs a number >= 0, got ${args[index + 1]}`);
    process.exit(2);
  }
  return value;
}

const MINUTES = flag("minutes", 1);
const INTERVAL_S = flag("interval", 10);
const ECHO_CLIENTS = flag("echo", 20);
const ROOM_CLIENTS = flag("room", 10);
const CHURN_PER_S = flag("churn", 20);
const HOSTILE_PER_S = flag("hostile", 2);
const MAX_MESSAGE = 64 * 1024;
const runtime = "Bun" in globalThis ? "bun" : "deno";

// ---------------------------------------------------------------- the server

const handlerErrors: unknown[] = [];
const server = serve(async (ws: Connection) => {
  if (ws.url.pathname === "/room") {
    for await (const message of ws) {
      for (const member of server.connections) {
        if (member.url.pathname === "/room") {
          member.send(message).catch(() => {});
          stats.deliveries++;
        }
      }
    }
  } else {
    for await (const message of ws) await ws.send(message);
  }
}, {
  hostname: "127.0.0.1",
  port: 0,
  maxMessageSize: MAX_MESSAGE,
  closeTimeout: 2000,
  onError: (error) => handlerErrors.push(error),
});
const port = server.addr.port;
const url = `ws://127.0.0.1:${port}`;

// ---------------------------------------------------------------- bookkeeping

const stats = { echoes: 0, deliveries: 0, churned: 0, hostile: 0, clientErrors: 0 };
let latencies: number[] = [];
let running = true;
const tasks: Promise<unknown>[] = [];
/** Pending sleeps, woken at once when the load stops (a set, so that nothing accumulates). */
const sleepers = new Set<() => void>();

function sleep(ms: number): Promise<void> {
  if (!running) return Promise.resolve();
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      sleepers.delete(wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    sleepers.add(wake);
  });
}

function stopLoad(): void {
  running = false;
  for (const wake of [...sleepers]) wake();
}

/** A standard WebSocket client with a message queue. */
class Client {
  readonly socket: WebSocket;
  readonly opened: Promise<boolean>;
  readonly closed: Promise<void>;
  #queue: unknown[] = [];
  #waiter: ((data: unknown) => void) | undefined;

  constructor(path: string) {
    this.socket = new WebSocket(url + path);
    this.socket.binaryType = "arraybuffer";
    this.opened = new Promise((resolve) => {
      this.socket.addEventListener("open", () => resolve(true), { once: true });
      this.socket.addEventListener("close", () => resolve(false), { once: true });
    });
    this.closed = new Promise((resolve) => this.socket.addEventListener("close", () => resolve()));
    this.socket.addEventListener("message", (event) => {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (waiter) waiter(event.data);
      else if (this.#queue.length < 1000) this.#queue.push(event.data);
    });
    this.socket.addEventListener("close", () => {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.(undefined);
    });
  }

  /** The next message; `undefined` once closed. */
  next(): Promise<unknown> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift());
    if (this.socket.readyState >= WebSocket.CLOSING) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  async close(): Promise<void> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    await this.closed;
  }
}

// ---------------------------------------------------------------- load

async function echoLoop(id: number): Promise<void> {
  while (running) {
    const client = new Client("/echo");
    if (!await client.opened) {
      stats.clientErrors++;
      await sleep(100);
      continue;
    }
    for (let seq = 0; running; seq++) {
      const payload = seq % 5 === 0
        ? new Uint8Array(256).fill(id)
        : `echo ${id} ${seq} ${"x".repeat(seq % 64)}`;
      const sent = performance.now();
      client.socket.send(payload);
      const reply = await client.next();
      if (reply === undefined) {
        stats.clientErrors++;
        break;
      }
      latencies.push(performance.now() - sent);
      stats.echoes++;
      await sleep(10);
    }
    await client.close();
  }
}

async function roomLoop(): Promise<void> {
  const members = Array.from({ length: ROOM_CLIENTS }, () => new Client("/room"));
  await Promise.all(members.map((member) => member.opened));
  // Members drain what they receive so that nothing piles up client-side.
  const drains = members.map(async (member) => {
    while (await member.next() !== undefined) { /* drained */ }
  });
  for (let seq = 0; running; seq++) {
    const speaker = members[seq % members.length];
    if (speaker.socket.readyState === WebSocket.OPEN) speaker.socket.send(`room ${seq}`);
    await sleep(100);
  }
  await Promise.all(members.map((member) => member.close()));
  await Promise.all(drains);
}

async function churnLoop(): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  while (running) {
    const once = (async () => {
      const client = new Client("/echo");
      if (await client.opened) {
        client.socket.send("churn");
        if (await client.next() === undefined) stats.clientErrors++;
        else stats.churned++;
      } else {
        stats.clientErrors++;
      }
      await client.close();
    })();
    inFlight.add(once);
    once.finally(() => inFlight.delete(once));
    await sleep(1000 / CHURN_PER_S);
  }
  await Promise.all(inFlight);
}

/** One masked client frame. */
function frame(opcode: number, payload: Uint8Array, { mask = true } = {}): Buffer {
  const head = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (payload.length < 126) head.push(maskBit | payload.length);
  else if (payload.length < 65536) head.push(maskBit | 126, payload.length >> 8, payload.length & 255);
  else {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(payload.length));
    head.push(maskBit | 127, ...length);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = [0x0f, 0x1e, 0x2d, 0x3c];
  return Buffer.concat([
    Buffer.from(head),
    Buffer.from(key),
    Buffer.from(payload.map((b, i) => b ^ key[i % 4])),
  ]);
}

const HANDSHAKE = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/** A raw TCP peer that plays one hostile part, then leaves (after `holdMs` at most). */
function hostilePeer(kind: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let holdMs = 1000;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!socket.destroyed) socket.destroy();
      stats.hostile++;
      resolve();
    };
    const timer = setTimeout(finish, 6000);
    socket.on("error", () => {});
    socket.on("close", finish);
    const afterUpgrade = (act: () => void) => {
      let head = "";
      const onData = (chunk: Buffer) => {
        head += chunk.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        act();
        setTimeout(finish, holdMs);
      };
      socket.on("data", onData);
      socket.write(HANDSHAKE + "Sec-WebSocket-Version: 13\r\n\r\n");
    };
    socket.once("connect", () => {
      switch (kind % 6) {
        case 0: // reset mid-frame
          return afterUpgrade(() => {
            socket.write(frame(2, new Uint8Array(1000)).subarray(0, 400));
            setTimeout(() => socket.resetAndDestroy(), 20);
          });
        case 1: // invalid UTF-8
          return afterUpgrade(() => socket.write(frame(1, new Uint8Array([0x68, 0xff, 0xfe]))));
        case 2: // too big, then never answers the close: closeTimeout releases it
          holdMs = 3000;
          return afterUpgrade(() => socket.write(frame(2, new Uint8Array(MAX_MESSAGE + 1))));
        case 3: // slowloris: a request head that never ends
          holdMs = 5000;
          socket.write("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
          setTimeout(finish, holdMs);
          return;
        case 4: // refused handshake (version 8 → 426)
          socket.on("data", () => finish());
          socket.write(HANDSHAKE + "Sec-WebSocket-Version: 8\r\n\r\n");
          return;
        default: // an unmasked frame
          return afterUpgrade(() =>
            socket.write(frame(1, new TextEncoder().encode("unmasked"), { mask: false }))
          );
      }
    });
  });
}

async function hostileLoop(): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let kind = 0; running; kind++) {
    const peer = hostilePeer(kind);
    inFlight.add(peer);
    peer.finally(() => inFlight.delete(peer));
    await sleep(1000 / HOSTILE_PER_S);
  }
  await Promise.all(inFlight);
}

// ---------------------------------------------------------------- sampling

interface Sample {
  t: number;
  rss: number;
  heap: number;
  open: number;
  accepted: number;
  echoes: number;
  p50: number;
  p99: number;
  deliveries: number;
  churned: number;
  hostile: number;
  refused: number;
}

const MiB = 2 ** 20;
const samples: Sample[] = [];
const started = performance.now();
let last = { accepted: 0, refused: 0, ...stats };

function collectGarbage(): boolean {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else return false;
  return true;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const COLUMNS =
  "   t s │ RSS MiB │ heap MiB │ open │ accepted │ echoes │ p50 ms │ p99 ms │ bcast │ churn │ hostile │ refused";

function row(s: Sample): string {
  const n = (value: number, width: number, digits = 0) =>
    (Number.isNaN(value) ? "-" : value.toFixed(digits)).padStart(width);
  return `${n(s.t, 6)} │ ${n(s.rss, 7, 1)} │ ${n(s.heap, 8, 1)} │ ${n(s.open, 4)} │ ${n(s.accepted, 8)} │ ` +
    `${n(s.echoes, 6)} │ ${n(s.p50, 6, 2)} │ ${n(s.p99, 6, 2)} │ ${n(s.deliveries, 5)} │ ${
      n(s.churned, 5)
    } │ ` +
    `${n(s.hostile, 7)} │ ${n(s.refused, 7)}`;
}

function sample(): Sample {
  collectGarbage();
  const memory = process.memoryUsage();
  const refused = Object.values(server.counters.refused).reduce((a, b) => a + b, 0);
  const sorted = latencies.sort((a, b) => a - b);
  latencies = [];
  const s: Sample = {
    t: (performance.now() - started) / 1000,
    rss: memory.rss / MiB,
    heap: memory.heapUsed / MiB,
    open: server.connections.size,
    accepted: server.counters.accepted - last.accepted,
    echoes: stats.echoes - last.echoes,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    deliveries: stats.deliveries - last.deliveries,
    churned: stats.churned - last.churned,
    hostile: stats.hostile - last.hostile,
    refused: refused - last.refused,
  };
  last = { accepted: server.counters.accepted, refused, ...stats };
  samples.push(s);
  console.log(row(s));
  return s;
}

/** Least-squares slope of RSS in MiB per minute. */
function slope(points: Sample[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mx) * (p.rss - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

// ---------------------------------------------------------------- run

const gcNote = collectGarbage() ? "forced before each sample" : "not forced (--no-gc)";
console.log(
  `soak on ${runtime}: ${MINUTES} min, sample every ${INTERVAL_S} s; ${ECHO_CLIENTS} echo, ${ROOM_CLIENTS} room, ` +
    `${CHURN_PER_S} churn/s, ${HOSTILE_PER_S} hostile/s; port ${port}; gc ${gcNote}`,
);
console.log(COLUMNS);

for (let i = 0; i < ECHO_CLIENTS; i++) tasks.push(echoLoop(i));
if (ROOM_CLIENTS > 0) tasks.push(roomLoop());
if (CHURN_PER_S > 0) tasks.push(churnLoop());
if (HOSTILE_PER_S > 0) tasks.push(hostileLoop());

// Rows at every interval, the last one at the end of the load (before it stops).
const end = started + MINUTES * 60_000;
for (let next = started + INTERVAL_S * 1000; next < end + 1; next = Math.min(next + INTERVAL_S * 1000, end)) {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  sample();
  if (next >= end) break;
}
stopLoad();
const loadStopped = await Promise.race([
  Promise.all(tasks).then(() => true),
  new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000)),
]);
const drainStart = performance.now();
while (server.connections.size > 0 && performance.now() - drainStart < 10_000) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
console.log("load stopped; after drain:");
const final = sample();
await server.close();

// Judge on the second half of the run: runtimes grow their pools and heaps while warming up.
const loaded = samples.slice(0, -1); // without the drained row
const steady = loaded.filter((s) => s.t >= (MINUTES * 60) / 2);
const judged = steady.length >= 3 ? steady : loaded.slice(-3);
const perMinute = judged.length >= 2 ? slope(judged) : 0;
const span = judged.length >= 2 ? judged[judged.length - 1].t - judged[0].t : 0;
const first = judged[0]?.rss ?? final.rss;
const lastRss = judged[judged.length - 1]?.rss ?? final.rss;
const growing = perMinute > 2 && perMinute * (span / 60) > 0.1 * first;
const healthy = loadStopped && final.open === 0 && handlerErrors.length === 0;
console.log(
  `\nRSS slope ${perMinute >= 0 ? "+" : ""}${
    perMinute.toFixed(2)
  } MiB/min over the ${judged.length} samples ` +
    `from ${judged[0]?.t.toFixed(0) ?? "-"} s (${first.toFixed(1)} → ${lastRss.toFixed(1)} MiB); ` +
    `open after drain ${final.open}; handler errors ${handlerErrors.length}; client errors ${stats.clientErrors}; ` +
    `counters ${JSON.stringify(server.counters)}`,
);
if (!loadStopped) console.log("load generators did not stop within 15 s");
for (const error of handlerErrors.slice(0, 5)) console.error("handler error:", error);
console.log(
  `verdict (${runtime}): ${growing ? "RSS growing" : "RSS flat"}${healthy ? "" : " (server unhealthy)"}`,
);
process.exit(!growing && healthy ? 0 : 1);
