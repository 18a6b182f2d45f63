/**
 * Health check beside a WebSocket endpoint on one port: `GET /healthz`
 * answers 200 "OK" through `processRequest`; any other path is the echo
 * WebSocket.
 *
 *   deno run --allow-net --allow-env examples/health_check.ts
 *   bun run examples/health_check.ts
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
  processRequest(request) {
    if (new URL(request.url).pathname === "/healthz") return new Response("OK\n");
  },
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port} (GET /healthz)`),
});

await server.finished;
console.log("health check server stopped");
process.exit(0);
