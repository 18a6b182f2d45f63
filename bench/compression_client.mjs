// Client of bench/compression_server.ts: node bench/compression_client.mjs PORT CONNECTIONS MESSAGES SIZE
// Opens CONNECTIONS clients (permessage-deflate offered) that each echo one SIZE-byte JSON text, reads the
// server's RSS per connection, then echoes MESSAGES messages over 50 of them and reads its CPU per message.
import WebSocket from "ws";
const [port, conns, messages, size] = process.argv.slice(2).map(Number);
const url = `ws://127.0.0.1:${port}/`;
const stat = () => fetch(`http://127.0.0.1:${port}/__gc`).then((r) => r.json());
const text = JSON.stringify(
  Array.from({ length: size / 40 }, (_, i) => ({ id: i, name: "user" + (i % 50), ok: true })),
).slice(0, size);
const before = await stat();
const sockets = [];
for (let i = 0; i < conns; i += 50) {
  sockets.push(
    ...await Promise.all(
      Array.from({ length: Math.min(50, conns - i) }, () =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url, { perMessageDeflate: true });
          ws.on("open", () => {
            ws.send(text);
            ws.once("message", () => resolve(ws));
          });
          ws.on("error", reject);
        })),
    ),
  );
}
await new Promise((r) => setTimeout(r, 300));
const opened = await stat();
// CPU: each of the first 50 connections echoes messages/50 messages, one at a time.
const active = sockets.slice(0, 50);
const start = await stat();
const t0 = performance.now();
await Promise.all(active.map((ws) =>
  new Promise((resolve) => {
    let left = messages / active.length;
    ws.on("message", () => {
      if (--left === 0) resolve();
      else ws.send(text);
    });
    ws.send(text);
  })
));
const ms = performance.now() - t0;
const end = await stat();
console.log(JSON.stringify({
  extension: sockets[0].extensions,
  bytesPerConn: Math.round((opened.rss - before.rss) / conns),
  cpuUsPerMsg: +((end.cpuUs - start.cpuUs) / messages).toFixed(2),
  msgPerS: Math.round(messages / ms * 1000),
}));
for (const ws of sockets) ws.terminate();
process.exit(0);
