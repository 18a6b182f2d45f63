/**
 * Graceful shutdown driven by an AbortController: on SIGTERM or SIGINT the
 * server stops accepting, closes every client with 1001 "going away", gives
 * handlers up to `closeTimeout` to finish, then exits with status 0.
 *
 * Set CLOSE_CODE=1012 to tell clients the service is restarting (they should
 * reconnect), and CLOSE_TIMEOUT (ms) to fit a platform's grace period: Deno
 * Deploy allows about 5 seconds, so 3000 leaves room for the rest.
 *
 *   deno run --allow-net --allow-env examples/shutdown.ts
 *   bun run examples/shutdown.ts
 */
import process from "node:process";
import { serve } from "../mod.ts";

// Shutdown is driven by an AbortController: a signal handler, a deploy hook or
// a test can all abort it.
const controller = new AbortController();
process.on("SIGTERM", () => controller.abort());
process.on("SIGINT", () => controller.abort());

// 1001 "going away" by default; 1012 "service restart" tells clients to reconnect.
const code = Number(process.env.CLOSE_CODE ?? 1001);

const server = serve(async (ws) => {
  for await (const message of ws) await ws.send(message);
  // Iteration ends when the shutdown's close frame has been answered:
  // the place for per-connection cleanup (ws.signal is aborted too).
}, {
  hostname: process.env.HOST ?? "localhost",
  port: Number(process.env.PORT ?? 8765),
  // Handlers and peers get this long before the rest is dropped.
  closeTimeout: Number(process.env.CLOSE_TIMEOUT ?? 3000),
  onListen: ({ hostname, port }) => console.log(`listening on ws://${hostname}:${port}`),
});

controller.signal.addEventListener("abort", () => {
  console.log(`shutting down ${server.connections.size} connection(s) with ${code}`);
  server.close({ code });
});

await server.finished;
console.log("stopped", JSON.stringify(server.counters));
process.exit(0);
