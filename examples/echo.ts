/**
 * Echo server: every message comes back with its type (text as text, binary
 * as binary). A plain HTTP request gets 426. SIGINT or SIGTERM closes every
 * client with 1001 and exits with status 0.
 *
 *   deno run --allow-net --allow-env examples/echo.ts
 *   bun run examples/echo.ts
 *
 * Environment: HOST (default localhost), PORT (default 8765).
 */
import process from "node:process";
import { serve } from "../mod.ts";

const controller = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => controller.abort());

const server = serve(async (ws) => {
  for await (const message of ws) await ws.send(message);
}, {
  hostname: process.env.HOST ?? "localhost",
  port: Number(process.env.PORT ?? 8765),
  signal: controller.signal,
  onListen: ({ hostname, port }) => console.log(`echo server listening on ws://${hostname}:${port}`),
});

await server.finished;
console.log("echo server stopped");
process.exit(0);
