/**
 * What every benchmark server shares, so that raw, wsport and the peers do the
 * same work: the data the handshake hook attaches, the broadcast trigger and
 * its publish loop, the control endpoint, and the "listening" line.
 *
 * Each server answers every workload on its own path:
 * - `/echo`: sends every message back;
 * - `/broadcast`: subscribes the connection to one topic and says "ready";
 *   the text "publish <count> <size>" makes the server publish `count`
 *   messages of `size` bytes to the topic, one per event-loop turn, then
 *   answer the sender with a JSON line;
 * - `/churn`, `/idle`: nothing; the connection stays open until the peer closes it;
 * - `GET /__gc`: a full garbage collection, answered with the process RSS.
 *
 * @module
 */
import process from "node:process";
import { setImmediate } from "node:timers";

/** Whether this is Bun. */
export const isBun = "Bun" in globalThis;
/** Whether this is Node (neither Bun nor Deno). */
export const isNode = !isBun && !("Deno" in globalThis);
/** Loopback only. */
export const hostname = "127.0.0.1";
/** The broadcast topic. */
export const TOPIC = "bench";

/** What each server's handshake hook attaches to the connection. */
export interface SessionData {
  /** From the `user` query parameter. */
  user: string;
  /** The workload, from the path ("echo", "broadcast", "churn", "idle"). */
  workload: string;
}

/** The data the handshake hook attaches: the same object shape on every server. */
export function sessionFor(url: URL): SessionData {
  return { user: url.searchParams.get("user") ?? "anonymous", workload: url.pathname.slice(1) };
}

/** Parses the broadcast trigger "publish <count> <size>". */
export function parsePublish(message: unknown): { count: number; size: number } | undefined {
  if (typeof message !== "string" || !message.startsWith("publish ")) return undefined;
  const [, count, size] = message.split(" ");
  return { count: Number(count), size: Number(size) };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Publishes `count` messages of `size` bytes through `publishOne`, one per
 * event-loop turn (so that sockets are written between publishes, as when
 * publishes come from events), then returns the JSON report for the sender.
 */
export async function publishLoop(
  count: number,
  size: number,
  publishOne: (data: string) => void,
  skipped: () => number = () => 0,
): Promise<string> {
  const payload = "x".repeat(size);
  const skippedBefore = skipped();
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    publishOne(payload);
    await turn();
  }
  return JSON.stringify({
    published: count,
    skipped: skipped() - skippedBefore,
    publishMs: +(performance.now() - start).toFixed(1),
  });
}

/**
 * Collects garbage as thoroughly as the runtime allows and hands free pages
 * back, so that an RSS sample counts what live objects hold and not the
 * collector's headroom. V8 grows its young generation with the allocation and
 * survival rate (up to a fixed cap, so it is not a per-connection cost); only
 * a last-resort collection shrinks it again. Bun: a full collection, then
 * `Bun.shrink()`. Raw and wsport servers are measured the same way.
 */
function collectGarbage(): void {
  const g = globalThis as {
    Bun?: { gc(full: boolean): void; shrink?(): void };
    gc?: (options?: { type: string; execution: string; flavor: string }) => void;
  };
  if (g.Bun) {
    g.Bun.gc(true);
    g.Bun.shrink?.();
  } else {
    g.gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  }
}

/** Answers the control endpoint (`GET /__gc`); `undefined` for every other request. */
export function control(url: URL): Response | undefined {
  if (url.pathname !== "/__gc") return undefined;
  collectGarbage();
  const { rss, heapUsed, external } = process.memoryUsage();
  return Response.json({ rss, heapUsed, external });
}

/** The line the bench waits for: where the server listens. */
export function announce(port: number): void {
  console.log(JSON.stringify({ port, pid: process.pid, runtime: isBun ? "bun" : isNode ? "node" : "deno" }));
}
