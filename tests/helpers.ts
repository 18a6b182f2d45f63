/**
 * Test helpers shared by every test file: a server on 127.0.0.1 port 0, and
 * a client over the runtime's standard `WebSocket` that queues what it gets.
 */
import assert from "node:assert/strict";
import { type Handler, type Routes, serve, type ServeOptions, type Server } from "../mod.ts";

/** Starts a server on a free loopback port, for a handler or for routes. */
export function startServer<Data = unknown>(
  handler: Handler<Data> | Routes<Data>,
  options: ServeOptions<Data> = {},
): Server<Data> & { url: string; http: string } {
  const server = serve(handler, { hostname: "127.0.0.1", port: 0, ...options });
  return Object.assign(server, {
    url: `ws://127.0.0.1:${server.addr.port}`,
    http: `http://127.0.0.1:${server.addr.port}`,
    // `await using` waits for the close, with a deadline: the drain itself ends after closeTimeout.
    [Symbol.asyncDispose]: () =>
      within(server.close(), server.limits.closeTimeout + 5000, "the server's close on scope exit"),
  });
}

/** How long a test waits for an event that should come at once (an open, a close, a reply). */
export const EVENT_MS = 5000;

/**
 * A real WebSocket client that queues messages and records the close. Every
 * wait has a deadline: `opened`, `closed` and `next()` reject after
 * {@linkcode EVENT_MS} (or the given time) instead of hanging the test.
 */
export class TestClient {
  readonly socket: WebSocket;
  #opened: Promise<void>;
  #closed: Promise<{ code: number; reason: string }>;
  #messages: (string | Uint8Array)[] = [];
  #waiters: ((message: string | Uint8Array) => void)[] = [];

  constructor(url: string, protocols?: string | string[]) {
    this.socket = new WebSocket(url, protocols);
    this.socket.binaryType = "arraybuffer";
    this.#opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener("close", () => reject(new Error("closed before open")), { once: true });
    });
    this.#opened.catch(() => {});
    this.#closed = new Promise((resolve) => {
      this.socket.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason }));
    });
    this.socket.addEventListener("message", (event) => {
      const data = typeof event.data === "string" ? event.data : new Uint8Array(event.data);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(data);
      else this.#messages.push(data);
    });
  }

  /** Resolves once open; rejects if the handshake fails or takes over {@linkcode EVENT_MS}. */
  get opened(): Promise<void> {
    return within(this.#opened, EVENT_MS, "the client's open");
  }

  /** The close code and reason; rejects if the close takes over {@linkcode EVENT_MS} from now. */
  get closed(): Promise<{ code: number; reason: string }> {
    return this.closedWithin(EVENT_MS);
  }

  /** The close code and reason; rejects if the close takes over `ms` from now. */
  closedWithin(ms: number): Promise<{ code: number; reason: string }> {
    return within(this.#closed, ms, "the client's close");
  }

  /** Opens a client and waits for the handshake. */
  static async open(url: string, protocols?: string | string[]): Promise<TestClient> {
    const client = new TestClient(url, protocols);
    await client.opened;
    return client;
  }

  /** The next message, or a rejection after `ms`. */
  next(ms = EVENT_MS): Promise<string | Uint8Array> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const waiter = (message: string | Uint8Array) => {
        clearTimeout(timer);
        resolve(message);
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no message within ${ms} ms`));
      }, ms);
      this.#waiters.push(waiter);
    });
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    this.socket.send(data as string);
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` until it holds, failing after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A promise with a deadline. */
export function within<T>(promise: Promise<T>, ms: number, what = "promise"): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A peer in its own Node process: it upgrades, then reads nothing until told to. */
export interface SlowPeer {
  /** Starts reading at up to `bytesPerSecond` (default: as fast as it can). */
  read(bytesPerSecond?: number): void;
  /** Kills the process: the server sees the TCP connection go. */
  kill(): Promise<void>;
}

/**
 * A peer in its own Node process that upgrades and then never reads (until
 * told to), so that its socket truly stops reading: the kernel buffers fill
 * and the server sees backpressure. Kill it to disconnect.
 */
export async function startNonReader(port: number, path = "/"): Promise<SlowPeer> {
  const { spawn } = await import("node:child_process");
  const script = new URL("./fixtures/non_reader.mjs", import.meta.url).pathname;
  const child = spawn("node", [script, String(port), path], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        child.stdout!.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`non-reader exited with ${code}`)));
      }),
      EVENT_MS,
      "the non-reading peer's handshake",
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    read(bytesPerSecond = 0) {
      child.stdin!.write(`read ${bytesPerSecond}\n`);
    },
    async kill() {
      child.kill("SIGKILL");
      await within(exited, EVENT_MS, "the non-reading peer's exit");
    },
  };
}

/**
 * The echo round trip: sends `message` and asserts that the same message
 * comes back, text as text and binary as binary, within {@linkcode EVENT_MS}.
 */
export async function assertEchoes(client: TestClient, message: string | Uint8Array = "ping"): Promise<void> {
  client.send(message);
  assert.deepEqual(await client.next(), message);
}
