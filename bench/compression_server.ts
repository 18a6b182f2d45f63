// The compression cost per runtime, with bench/compression_client.mjs (docs/runtimes.md, "Compression"):
//   node --expose-gc bench/compression_server.ts 1     (Node 24, the ws engine; 0: compression off)
//   bun bench/compression_server.ts 1                  (Bun: uWebSockets' permessage-deflate)
//   deno run -A --v8-flags=--expose-gc bench/compression_server.ts 1   (Deno's default engine, the ws engine)
// prints the port; then `node bench/compression_client.mjs PORT 1000 20000 4096`. `GET /__gc` collects
// garbage and answers with the process RSS and CPU time so far.
import process from "node:process";
import { serve } from "../mod.ts";

const compression = process.argv[2] === "1";

/** A full collection where the runtime offers one (Node and Deno with --expose-gc, Bun always). */
function collectGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return bun.gc(true);
  const gc = (globalThis as { gc?: (options?: object) => void }).gc;
  if (!gc) throw new Error("run with --expose-gc (node) or --v8-flags=--expose-gc (deno)");
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

const server = serve(async (ws) => {
  for await (const m of ws) await ws.send(m);
}, {
  hostname: "127.0.0.1",
  port: 0,
  compression,
  processRequest(_r, c) {
    if (c.url.pathname === "/__gc") {
      collectGarbage();
      const cpu = process.cpuUsage();
      return Response.json({ rss: process.memoryUsage().rss, cpuUs: cpu.user + cpu.system });
    }
  },
});
console.log(server.addr.port);
