/**
 * Handshake policy: RFC 6455 §4.2.1 validation, origin checks and
 * subprotocol choice. Pure functions over a `Request`: the same answer on
 * every runtime, decided before the runtime's own upgrade is called.
 *
 * @module
 */
import type { RemoteAddress } from "./connection.ts";
import type { RefusalReason } from "./counters.ts";

/**
 * Headers as the `Headers` constructor takes them: a `Headers`, a record, or
 * name/value pairs. It is the standard `HeadersInit`, named here because
 * Node's typings (`@types/node`) declare `Headers` but no global
 * `HeadersInit`: wsport's npm declarations must type-check without the DOM
 * library.
 */
export type HeadersInit = NonNullable<ConstructorParameters<typeof Headers>[0]>;

/** What `processRequest` may return: a `Response` to send instead of upgrading, or nothing to go on. */
export type ProcessRequestResult = Response | undefined | void;

/**
 * The handshake options a server and a Workers room share; each adds its own
 * (limits, `onError`, `pubsub`, …). `Context` is what `processRequest` sees.
 */
export interface HandshakeOptions<Context> {
  /** Called for each upgrade request before anything else; a `Response` refuses it. */
  processRequest?(request: Request, context: Context): ProcessRequestResult | Promise<ProcessRequestResult>;
  /** Allowed `Origin` values; others get 403. Default: any origin. */
  origins?: OriginPolicy;
  /** Subprotocols spoken, in order of preference. */
  subprotocols?: readonly string[];
  /** Extra headers for every 101 response; `processRequest` adds per-request ones with `context.headers`. */
  headers?: HeadersInit;
  /** Upgrades past this many open connections (of the server, or of the room) get 503. Default: no limit. */
  maxConnections?: number;
}

/** Which `Origin` headers may connect. */
export type OriginPolicy =
  | readonly (string | RegExp | null)[]
  | ((origin: string | null) => boolean);

/** A refusal: the HTTP answer, and the counter it goes to. */
export interface Refusal {
  /** The response to send instead of upgrading. */
  response: Response;
  /** The counter the refusal is recorded under. */
  reason: RefusalReason;
}

/** Builds a short plain-text refusal. */
export function refuse(
  reason: RefusalReason,
  status: number,
  body: string,
  headers?: Record<string, string>,
): Refusal {
  return {
    reason,
    response: new Response(body + "\n", {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    }),
  };
}

/** Whether a comma-separated header lists `token`, compared case-insensitively. */
function hasToken(header: string | null, token: string): boolean {
  if (header === null) return false;
  for (const part of header.split(",")) {
    if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Whether `key` is base64 of exactly 16 bytes (RFC 6455 §4.2.1, item 5). */
function isValidKey(key: string | null): boolean {
  // 16 bytes encode to 22 base64 characters and "==".
  return key !== null && /^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key.trim());
}

/**
 * Checks an upgrade request against RFC 6455 §4.2.1. Returns `undefined`
 * when it is a valid WebSocket handshake, else the refusal to send:
 * 426 without `Upgrade`, 405 for a method other than GET, 400 for a bad
 * `Upgrade`, `Connection` or `Sec-WebSocket-Key`, and 426 with
 * `Sec-WebSocket-Version: 13` for another version.
 *
 * @example
 * ```ts
 * import { validateUpgrade } from "./handshake.ts";
 * const refusal = validateUpgrade(new Request("http://localhost/"));
 * console.log(refusal?.response.status); // 426
 * ```
 */
export function validateUpgrade(request: Request): Refusal | undefined {
  const headers = request.headers;
  const upgrade = headers.get("upgrade");
  if (upgrade === null) {
    return refuse("upgradeRequired", 426, "426 Upgrade Required: this is a WebSocket endpoint", {
      upgrade: "websocket",
      connection: "Upgrade",
    });
  }
  if (request.method !== "GET") {
    return refuse("methodNotAllowed", 405, "405 Method Not Allowed: a WebSocket upgrade must use GET", {
      allow: "GET",
    });
  }
  if (!hasToken(upgrade, "websocket")) {
    return refuse("badRequest", 400, "400 Bad Request: the Upgrade header must name websocket");
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    return refuse("badRequest", 400, "400 Bad Request: the Connection header must include Upgrade");
  }
  if (!isValidKey(headers.get("sec-websocket-key"))) {
    return refuse("badRequest", 400, "400 Bad Request: Sec-WebSocket-Key must be base64 of 16 bytes");
  }
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    return refuse(
      "unsupportedVersion",
      426,
      "426 Upgrade Required: only Sec-WebSocket-Version 13 is supported",
      { "sec-websocket-version": "13" },
    );
  }
  return undefined;
}

/**
 * Whether the request's `Origin` is allowed. A list may hold exact origins,
 * regular expressions, and `null` to allow requests without `Origin` (most
 * non-browser clients send none).
 *
 * @example
 * ```ts
 * import { isOriginAllowed } from "./handshake.ts";
 * const request = new Request("http://localhost/", { headers: { origin: "https://a.example" } });
 * console.log(isOriginAllowed(request, ["https://a.example"])); // true
 * ```
 */
export function isOriginAllowed(request: Request, policy: OriginPolicy): boolean {
  const origin = request.headers.get("origin");
  if (typeof policy === "function") return policy(origin);
  for (const allowed of policy) {
    if (allowed === origin) return true;
    if (allowed instanceof RegExp && origin !== null && allowed.test(origin)) return true;
  }
  return false;
}

/**
 * The subprotocol to answer with: the server's first choice among those the
 * client offered, or "" when none matches (the connection then proceeds
 * without one, as RFC 6455 allows).
 *
 * @example
 * ```ts
 * import { chooseSubprotocol } from "./handshake.ts";
 * const request = new Request("http://localhost/", { headers: { "sec-websocket-protocol": "b, a" } });
 * console.log(chooseSubprotocol(request, ["a", "b"])); // "a"
 * ```
 */
export function chooseSubprotocol(request: Request, supported: readonly string[]): string {
  const offered = request.headers.get("sec-websocket-protocol");
  if (offered === null || supported.length === 0) return "";
  const tokens = offered.split(",").map((token) => token.trim());
  return supported.find((protocol) => tokens.includes(protocol)) ?? "";
}

/** The admission policy {@linkcode admit} applies ({@linkcode negotiate} also reads `subprotocols`). */
export interface AdmissionPolicy {
  /** Allowed `Origin` values; others are refused 403. */
  origins?: OriginPolicy;
  /** Refuse 503 once this many connections are open. */
  maxConnections?: number;
  /** Subprotocols spoken, in order of preference. */
  subprotocols?: readonly string[];
}

/**
 * Decides whether an upgrade request may become a connection: RFC 6455
 * validation ({@linkcode validateUpgrade}), then the origin (403), then
 * capacity (503) given how many connections are `open`. Returns the refusal,
 * or `undefined` to go on. The server and the Workers rooms share it.
 *
 * @example
 * ```ts
 * import { admit } from "./handshake.ts";
 * const request = new Request("http://localhost/", { headers: { origin: "https://evil.example" } });
 * console.log(admit(request, { origins: ["https://good.example"] }, 0)?.response.status); // 426 (not an upgrade)
 * ```
 */
export function admit(request: Request, policy: AdmissionPolicy, open: number): Refusal | undefined {
  const invalid = validateUpgrade(request);
  if (invalid) return invalid;
  if (policy.origins && !isOriginAllowed(request, policy.origins)) {
    return refuse("forbiddenOrigin", 403, "403 Forbidden: origin not allowed");
  }
  if (open >= (policy.maxConnections ?? Infinity)) {
    return refuse("overCapacity", 503, "503 Service Unavailable: too many connections");
  }
  return undefined;
}

/**
 * {@linkcode admit}, then {@linkcode chooseSubprotocol}: the refusal, or the
 * subprotocol to answer with ("" for none). What the server and the Workers
 * rooms both decide once `processRequest` has let a request through.
 *
 * @example
 * ```ts
 * import { negotiate } from "./handshake.ts";
 * const request = new Request("http://localhost/", {
 *   headers: {
 *     upgrade: "websocket",
 *     connection: "Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *     "sec-websocket-protocol": "b, a",
 *   },
 * });
 * console.log(negotiate(request, { subprotocols: ["a", "b"] }, 0)); // "a"
 * ```
 */
export function negotiate(request: Request, policy: AdmissionPolicy, open: number): Refusal | string {
  return admit(request, policy, open) ??
    (policy.subprotocols ? chooseSubprotocol(request, policy.subprotocols) : "");
}

/** Response headers as name/value pairs (names in lower case, as a `Headers` lists them). */
export type HeaderPairs = readonly (readonly [string, string])[];

/**
 * The context `processRequest` receives (`HandshakeContext`; a room's adds
 * `topics`). Its `headers` are made on first use, so that a handshake whose
 * hook never touches them allocates nothing for them.
 */
export class Handshake<Data> {
  /** Where the request came from. */
  readonly remoteAddress: RemoteAddress;
  /** The request URL, parsed. */
  readonly url: URL;
  /** The matched route's parameters (the server's routes', or those an embedder passed). */
  readonly params: Record<string, string | undefined>;
  /** What becomes `ws.data`. */
  data: Data | undefined = undefined;
  #headers: Headers | undefined = undefined;

  /** A context for one request. */
  constructor(remoteAddress: RemoteAddress, url: URL, params: Record<string, string | undefined>) {
    this.remoteAddress = remoteAddress;
    this.url = url;
    this.params = params;
  }

  /** Headers for this handshake's 101, after the `headers` option. */
  get headers(): Headers {
    return this.#headers ??= new Headers();
  }

  /** The headers `processRequest` set, or `undefined` if it never asked for them (not on the context's face). */
  static headersOf(handshake: Handshake<unknown>): Headers | undefined {
    return handshake.#headers;
  }
}

/**
 * The extra headers of a 101: `base`, then `over` on top of it. A name in
 * `over` replaces the same name in `base`, except `Set-Cookie`, which adds
 * (each cookie is its own header). Returns `base` itself when `over` adds
 * nothing, so that connections without headers of their own share one list.
 *
 * @example
 * ```ts
 * import { mergeHeaders } from "./handshake.ts";
 * const merged = mergeHeaders([["set-cookie", "a=1"], ["x-id", "0"]], new Headers({ "set-cookie": "b=2", "x-id": "7" }));
 * console.log(merged); // [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-id", "7"]]
 * ```
 */
export function mergeHeaders(base: HeaderPairs, over: Headers | HeaderPairs | undefined): HeaderPairs {
  const pairs = over instanceof Headers ? [...over] : over;
  if (!pairs || pairs.length === 0) return base;
  if (base.length === 0) return pairs;
  const headers = new Headers(base as [string, string][]);
  for (const [name] of pairs) {
    if (name.toLowerCase() !== "set-cookie") headers.delete(name);
  }
  for (const [name, value] of pairs) headers.append(name, value);
  return [...headers];
}
