/**
 * Which engine `serve()` runs on: Bun's own, the ws engine (`node:http` and
 * the `ws` package), which is Node's only engine and Deno's default, or
 * Deno's own ("native": `Deno.serve` and `Deno.upgradeWebSocket`).
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

/**
 * ws reads this variable when it loads, which on Deno needs the env permission. (ws 8 also reads
 * WS_NO_UTF_8_VALIDATE, but only where `node:buffer` lacks `isUtf8`, which Deno has.)
 */
const WS_VARIABLE = "WS_NO_BUFFER_UTIL";

const WS_PACKAGE_MISSING =
  'the npm package ws ("ws": "npm:ws@^8.18.0" in deno.json imports, or in package.json)';
const ENV_MISSING = `--allow-env (or --allow-env=${WS_VARIABLE}), which ws reads when it loads`;

/** Whether the fallback to Deno's native engine was reported: once per process is enough. */
let fallbackReported = false;

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
    if (chosen === "native") return denoAdapter;
    // The ws engine is Deno's default: it bounds memory against any peer and is faster there
    // (README, "Engines"). A default that cannot run falls back to the native engine and says why;
    // a deliberate `engine: "ws"` fails instead.
    const missing = !wsResolvable()
      ? WS_PACKAGE_MISSING
      : !denoMayRead(deno, WS_VARIABLE)
      ? ENV_MISSING
      : undefined;
    if (missing === undefined) return wsAdapter;
    if (chosen === "ws") throw new InvalidOption(`wsport: the ws engine needs ${missing}`);
    if (!fallbackReported) {
      fallbackReported = true;
      console.warn(
        `wsport: serve() runs on Deno's native engine, because its default ws engine needs ${missing}. ` +
          "The native engine does not bound memory against a peer: it assembles each message (a fragmented " +
          "one without any limit) before wsport checks maxMessageSize, and it cannot pause reading. Add what is missing, or choose " +
          `engine: "native" (or ${DENO_ENGINE_VARIABLE}=native) to keep the native engine without this warning.`,
      );
    }
    return denoAdapter;
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
