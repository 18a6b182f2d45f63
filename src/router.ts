/**
 * Path routing: a routes object, `{ "/rooms/:room": chat, "/echo": echo }`,
 * compiled to web-standard `URLPattern`s and matched against a request URL
 * before the upgrade, so that a path no route serves costs no WebSocket.
 *
 * @module
 */
import { InvalidOption } from "./errors.ts";
import type { Handler } from "./connection.ts";

/**
 * Routes: pathname patterns in `URLPattern` syntax (`/echo`, `/rooms/:room`,
 * `/files/*`, `/v{1}?/chat`), each with the handler that serves it. The
 * first pattern that matches, in the object's key order, wins.
 *
 * Routes need the runtime's global `URLPattern` (Deno, Bun, Node 23.8+,
 * Workers). Node 22 has none: there, creating a server with routes throws
 * `InvalidOption`, unless an implementation was installed as
 * `globalThis.URLPattern` first (for example the npm package
 * `urlpattern-polyfill`). A single handler works everywhere.
 *
 * @example
 * ```ts
 * import { type Routes, serve } from "../mod.ts";
 *
 * const routes: Routes = {
 *   "/echo": async (ws) => {
 *     for await (const message of ws) await ws.send(message);
 *   },
 *   "/rooms/:room": (ws) => ws.send(`welcome to ${ws.params.room}`),
 * };
 * const server = serve(routes, { port: 0 });
 * await server.close();
 * ```
 */
export type Routes<Data = unknown> = Readonly<Record<string, Handler<Data>>>;

/** A route that matched a URL: its handler and its decoded parameters. */
export interface RouteMatch<Data = unknown> {
  /** The handler of the route. */
  handler: Handler<Data>;
  /** The route's named groups (`:room`), percent-decoded; unnamed ones (`*`) under "0", "1", … */
  params: Record<string, string | undefined>;
  /** The pattern as written in the routes object. */
  pattern: string;
}

interface CompiledRoute<Data> {
  pattern: string;
  compiled: URLPattern;
  handler: Handler<Data>;
}

function decode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // not valid percent-encoding: leave it as it came
  }
}

/**
 * A compiled routes object. Matching looks at the pathname only; the
 * query string plays no part.
 *
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 *
 * const router = new Router({ "/rooms/:room": () => {} });
 * console.log(router.match(new URL("http://localhost/rooms/a%20b"))?.params); // { room: "a b" }
 * console.log(router.match(new URL("http://localhost/other"))); // undefined
 * ```
 */
export class Router<Data = unknown> {
  #routes: CompiledRoute<Data>[] = [];

  /**
   * Compiles `routes`; throws `InvalidOption` for a pattern that is not a path, a value that is not a
   * function, or a runtime without `URLPattern`.
   */
  constructor(routes: Routes<Data>) {
    // Looked up now, not when this module loads, so that an implementation installed later counts.
    if (typeof (globalThis as { URLPattern?: unknown }).URLPattern !== "function") {
      throw new InvalidOption(
        "routes: this runtime has no global URLPattern (Node before 23.8); run on Node 23.8 or later, " +
          "or install an implementation as globalThis.URLPattern before creating the server " +
          "(e.g. the npm package urlpattern-polyfill), or serve one handler and look at ws.url yourself",
      );
    }
    for (const [pattern, handler] of Object.entries(routes)) {
      if (typeof handler !== "function") {
        throw new InvalidOption(`route "${pattern}": the handler must be a function`);
      }
      if (!pattern.startsWith("/")) {
        throw new InvalidOption(`route "${pattern}": a route pattern is a pathname and starts with "/"`);
      }
      let compiled: URLPattern;
      try {
        compiled = new URLPattern({ pathname: pattern });
      } catch (error) {
        throw new InvalidOption(
          `route "${pattern}": not a valid URLPattern pathname (${(error as Error).message})`,
        );
      }
      this.#routes.push({ pattern, compiled, handler });
    }
    if (this.#routes.length === 0) throw new InvalidOption("routes: give at least one route");
  }

  /** The first route whose pattern matches `url`'s pathname, or `undefined`. */
  match(url: URL): RouteMatch<Data> | undefined {
    for (const route of this.#routes) {
      const result = route.compiled.exec({ pathname: url.pathname });
      if (!result) continue;
      const params: Record<string, string | undefined> = {};
      for (const [name, value] of Object.entries(result.pathname.groups)) params[name] = decode(value);
      return { handler: route.handler, params, pattern: route.pattern };
    }
    return undefined;
  }
}
