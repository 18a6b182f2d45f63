// The ws engine's compression cost, with bench/compression_client.mjs (README, "Engines"):
//   node --expose-gc bench/compression_server.ts 1 (compression on; 0: off), then the client with the port.
import { serve } from "../mod.ts";
const compression = process.argv[2] === "1";
const server = serve(async (ws) => {
  for await (const m of ws) await ws.send(m);
}, {
  hostname: "127.0.0.1",
  port: 0,
  compression,
  processRequest(_r, c) {
    if (c.url.pathname === "/__gc") {
      (globalThis as unknown as { gc(options: object): void }).gc({
        type: "major",
        execution: "sync",
        flavor: "last-resort",
      });
      const cpu = process.cpuUsage();
      return Response.json({ rss: process.memoryUsage().rss, cpuUs: cpu.user + cpu.system });
    }
  },
});
console.log(server.addr.port);
