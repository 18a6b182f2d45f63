/**
 * Which engine `serve()` runs on: Bun's own, Deno's own ("native", Deno's
 * default), or the ws engine (`node:http` and the `ws` package), which is
 * Node's only engine and Deno's other one.
 *
 * Kept apart from `runtime.ts` (what `createServer()` embeds with) so that the
 * ws engine is not in the module graph of the Workers and Hono entry points.
 *
 * @module
 */
import type { Adapter } from "./adapter.ts";
import { bunAdapter } from "./adapters/bun.ts";
import { denoAdapter } from "./adapters/deno.ts";
import { wsAdapter, wsResolvable } from "./adapters/node.ts";
import { InvalidOption } from "./errors.ts";

/**
 * A WebSocket engine for `serve()`: `"ws"` (node:http and the `ws` package,
 * on Node and Deno) or `"native"` (the runtime's own: `Deno.serve` and
 * `Deno.upgradeWebSocket`, or Bun's uWebSockets).
 */
export type Engine = "ws" | "native";

/** The environment variable that picks Deno's engine when the `engine` option is not given. */
export const DENO_ENGINE_VARIABLE = "WSPORT_DENO_ENGINE";

/** ws reads this variable when it loads, which on Deno needs the env permission. */
const WS_VARIABLE = "WS_NO_BUFFER_UTIL";

interface DenoPermissions {
  permissions: { querySync(descriptor: { name: "env"; variable: string }): { state: string } };
  env: { get(name: string): string | undefined };
}

function denoMayRead(deno: DenoPermissions, variable: string): boolean {
  return deno.permissions.querySync({ name: "env", variable }).state === "granted";
}

/** Returns the adapter `serve()` uses for `engine` on this runtime. */
export function serveAdapter(engine: Engine | undefined): Adapter {
  if (engine !== undefined && engine !== "ws" && engine !== "native") {
    throw new InvalidOption(`engine must be "ws" or "native", got ${JSON.stringify(engine)}`);
  }
  if ("Bun" in globalThis) {
    if (engine === "ws") {
      throw new InvalidOption('engine "ws" runs on Node and Deno; Bun has its native engine');
    }
    return bunAdapter;
  }
  if ("Deno" in globalThis) {
    const deno = (globalThis as unknown as { Deno: DenoPermissions }).Deno;
    let chosen = engine;
    if (chosen === undefined && denoMayRead(deno, DENO_ENGINE_VARIABLE)) {
      const value = deno.env.get(DENO_ENGINE_VARIABLE);
      if (value !== undefined && value !== "") {
        if (value !== "ws" && value !== "native") {
          throw new InvalidOption(
            `${DENO_ENGINE_VARIABLE} must be "ws" or "native", got ${JSON.stringify(value)}`,
          );
        }
        chosen = value;
      }
    }
    // Deno's native engine stays the default until the bench shows the ws engine faster there
    // (README, "Engines"); the ws engine is one option or one variable away.
    if (chosen !== "ws") return denoAdapter;
    if (!wsResolvable()) {
      throw new InvalidOption(
        'wsport: the ws engine needs the npm package ws ("ws": "npm:ws@^8.18.0" in deno.json imports, or in package.json)',
      );
    }
    if (!denoMayRead(deno, WS_VARIABLE)) {
      throw new InvalidOption(
        `wsport: the ws engine needs --allow-env (or --allow-env=${WS_VARIABLE}), which ws reads when it loads`,
      );
    }
    return wsAdapter;
  }
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (process?.versions?.node) {
    if (engine === "native") {
      throw new InvalidOption('engine "native" exists on Deno and Bun; Node has the ws engine');
    }
    return wsAdapter;
  }
  throw new Error(
    "wsport: serve() runs on Node, Deno and Bun; elsewhere embed createServer().fetch (Workers: wsport/workers)",
  );
}
