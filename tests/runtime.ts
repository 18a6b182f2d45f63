/**
 * Which runtime and WebSocket engine the suite runs on, for the few tests
 * whose expectations differ by engine: key those on `engine`, not `runtime`
 * (Deno runs both the ws engine and its own). The engine is what `serve()`
 * picks: on Deno the ws engine by default (phase `deno`), Deno's own with
 * WSPORT_DENO_ENGINE=native (phase `deno-native`).
 */
import { serveAdapter } from "../src/engine.ts";

/** The runtime running the tests. */
export const runtime: "bun" | "deno" | "node" = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : "node";

/** The engine `serve()` uses here: Bun's ("bun"), Deno's native one ("deno"), or the ws engine (Node, Deno's default). */
export const engine = serveAdapter(undefined).runtime as "bun" | "deno" | "ws";

/** The command that runs a TypeScript file on this runtime, with every permission on Deno. */
export function runArgs(file: string): string[] {
  return runtime === "deno" ? ["run", "-A", file] : [file];
}

/** Whether the runtime has a global `URLPattern`, which routes need (Node 22 has none; Node 23.8+ has it). */
export const hasURLPattern = typeof (globalThis as { URLPattern?: unknown }).URLPattern === "function";

/** `{ skip: noURLPattern }` for the tests that need `URLPattern`: the reason on a runtime without it. */
export const noURLPattern: string | false = !hasURLPattern && "no URLPattern on Node 22 (Node 23.8+ has it)";
