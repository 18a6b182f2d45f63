/**
 * `reconnect()`: keeps a client connection open, with backoff, for as long as
 * you iterate (`connect()` is in `client.ts`).
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { type ConnectOptions, openClient, type OpenedClient, parseURL } from "./client.ts";
import { type CloseInfo, InvalidHandshake } from "./errors.ts";
import { checkNumber } from "./options.ts";

const noop = () => {};

/** How a connection yielded by {@linkcode reconnect} ended, for `shouldReconnect`. */
export interface ReconnectCloseInfo extends CloseInfo {
  /** `true` when this side started the closing handshake (`close()`, a limit, or the signal). */
  initiatedByClient: boolean;
}

/** Options of {@linkcode reconnect}: the options of {@linkcode connect} and the backoff. */
export interface ReconnectOptions extends ConnectOptions {
  /** Milliseconds before the first attempt after a loss or failure. Default 100. */
  minDelay?: number;
  /** The longest wait between attempts, in milliseconds. Default 10,000. */
  maxDelay?: number;
  /** Each consecutive failure multiplies the wait by this. Default 1.6. */
  factor?: number;
  /**
   * Randomness of each wait, from 0 (exact) to 1: a wait is
   * `min(maxDelay, minDelay × factor^n) × (1 − jitter × random())`, so many
   * clients dropped at once do not all come back at once. Default 0.5.
   */
  jitter?: number;
  /**
   * Whether to reconnect after a connection the loop yielded has closed.
   * Default: not after a normal close (1000, 1001) this side started;
   * after anything else (a server's 1000, 1001, 1006, 1011, 1012, 1013, …) yes.
   */
  shouldReconnect?(close: ReconnectCloseInfo): boolean;
  /**
   * Whether to try again after an attempt failed; returning `false` makes the
   * loop throw `error`. Default: retry timeouts and {@linkcode InvalidHandshake}s
   * without a status (unreachable server, or a runtime that does not tell)
   * or with 408, 429 or 5xx; throw anything else (401, 403, 404, a bad URL or
   * option).
   */
  shouldRetry?(error: unknown): boolean;
  /** Called after each failed attempt that will be retried, with the wait in milliseconds. Default: nothing. */
  onRetry?(error: unknown, delay: number): void;
}

/** Resolves `true` after `ms`, or `false` as soon as `signal` aborts; leaves no timer behind. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function defaultShouldReconnect(close: ReconnectCloseInfo): boolean {
  return !(close.initiatedByClient && (close.code === 1000 || close.code === 1001));
}

function defaultShouldRetry(error: unknown): boolean {
  if (error instanceof InvalidHandshake) {
    const status = error.status;
    return status === undefined || status === 408 || status === 429 || status >= 500;
  }
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * Connects to `url` and yields the open connection; once that connection has
 * closed and you ask for the next one, connects again, as Python websockets'
 * `async for websocket in connect(uri)` does.
 *
 * - The first attempt is immediate. After a connection is lost the loop
 *   waits `minDelay`, then after each failed attempt `factor` times longer
 *   (up to `maxDelay`, with `jitter`); a successful open resets the backoff.
 * - It waits for the connection it yielded to close before reconnecting
 *   (iterate it to the end, or `close()` it).
 * - It ends (without error) when `signal` aborts (the open connection is
 *   closed with 1000), or when `shouldReconnect` says no. Leaving the loop
 *   (`break`, `return`, a throw) closes the open connection with 1000 and
 *   waits for the closing handshake.
 * - A failed attempt is retried while `shouldRetry` says so; otherwise the
 *   loop throws the error (by default: 4xx answers other than 408 and 429,
 *   bad URLs and options).
 *
 * @example Stay connected until aborted
 * ```ts
 * import { reconnect, serve } from "../mod.ts";
 *
 * await using server = serve(async (ws) => {
 *   await ws.send("welcome");
 * }, { hostname: "127.0.0.1", port: 0 });
 *
 * const controller = new AbortController();
 * for await (const ws of reconnect(`ws://127.0.0.1:${server.addr.port}/`, { signal: controller.signal })) {
 *   for await (const message of ws) console.log(message); // "welcome", then the server closes with 1000
 *   controller.abort(); // a real client would go on: the server's close is not this side's
 * }
 * ```
 */
export async function* reconnect(
  url: string | URL,
  options: ReconnectOptions = {},
): AsyncGenerator<Connection, void, undefined> {
  const {
    minDelay = 100,
    maxDelay = 10_000,
    factor = 1.6,
    jitter = 0.5,
    shouldReconnect = defaultShouldReconnect,
    shouldRetry = defaultShouldRetry,
    onRetry,
    signal,
    ...connectOptions
  } = options;
  checkNumber("minDelay", minDelay, 0, Infinity);
  checkNumber("maxDelay", maxDelay, minDelay, Infinity);
  checkNumber("factor", factor, 1, Infinity);
  checkNumber("jitter", jitter, 0, 1);
  parseURL(url); // a bad URL throws now rather than being retried

  const backoff = (n: number) => Math.min(maxDelay, minDelay * factor ** n) * (1 - jitter * Math.random());
  // Aborted when the caller's signal aborts or the loop ends: cancels a wait or
  // an attempt, and closes the open connection (connect() was given it).
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal!.reason);
  if (signal?.aborted) return;
  signal?.addEventListener("abort", onAbort, { once: true });
  let opened: OpenedClient | undefined;
  try {
    let failures = 0;
    let wait = 0;
    while (true) {
      if (wait > 0 && !await sleep(wait, stop.signal)) return;
      if (stop.signal.aborted) return;
      try {
        opened = await openClient(url, { ...connectOptions, signal: stop.signal });
      } catch (error) {
        if (stop.signal.aborted) return;
        if (!shouldRetry(error)) throw error;
        wait = backoff(failures++);
        onRetry?.(error, wait);
        continue;
      }
      failures = 0;
      yield opened.connection;
      const info = await opened.connection.closed;
      const initiatedByClient = opened.closeStarted();
      opened = undefined;
      if (stop.signal.aborted) return;
      if (!shouldReconnect({ ...info, initiatedByClient })) return;
      wait = backoff(failures++);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop.abort();
    if (opened) {
      await opened.connection.close(1000).catch(noop);
    }
  }
}
