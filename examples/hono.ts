/**
 * A Hono app with HTTP routes and WebSockets on one port, on Deno or Bun
 * (picked at run time):
 *
 * - `GET /` answers a short HTML page that talks to `/ws`;
 * - `/ws` is an echo WebSocket;
 * - `/private/ws` sits behind a bearer-token middleware: without
 *   `Authorization: Bearer <TOKEN>` (or `?token=<TOKEN>`, which browsers can
 *   send) the upgrade is refused with 401 before anything is upgraded; with
 *   it, the socket greets the user the middleware found, then echoes.
 *
 * SIGINT or SIGTERM closes every WebSocket with 1001, stops the HTTP server
 * and exits with status 0.
 *
 *   deno run --allow-net --allow-env examples/hono.ts
 *   bun run examples/hono.ts
 *
 * Environment: HOST (default localhost), PORT (default 8765), TOKEN (default "secret").
 */
import process from "node:process";
import { type Context, Hono } from "hono";
import type { Connection } from "../mod.ts";
import { bunWebSocket, websocket } from "../hono.ts";

type AppEnv = { Variables: { user: string } };

const hostname = process.env.HOST ?? "localhost";
const port = Number(process.env.PORT ?? 8765);
const token = process.env.TOKEN ?? "secret";

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>wsport + Hono</title>
<h1>wsport + Hono</h1>
<p>HTTP and WebSockets on one port. <code>/ws</code> echoes:</p>
<form><input id="text" value="hello" autofocus> <button>send</button></form>
<pre id="log"></pre>
<script>
  const log = (line) => document.getElementById("log").textContent += line + "\\n";
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
  ws.onopen = () => log("open");
  ws.onmessage = (event) => log("< " + event.data);
  ws.onclose = (event) => log("closed " + event.code);
  document.querySelector("form").onsubmit = (event) => {
    event.preventDefault();
    ws.send(document.getElementById("text").value);
  };
</script>
`;

async function echo(ws: Connection<unknown>): Promise<void> {
  for await (const message of ws) await ws.send(message);
}

const app = new Hono<AppEnv>();

app.get("/", (c) => c.html(PAGE));

const publicSocket = websocket(echo);
app.get("/ws", publicSocket);

// Auth runs before the upgrade: a refused request costs no WebSocket.
app.use("/private/*", async (c, next) => {
  const header = c.req.header("authorization");
  const given = header === undefined ? c.req.query("token") : header.replace(/^Bearer\s+/i, "");
  if (given !== token) {
    return c.text("401 Unauthorized: a bearer token is required\n", 401, {
      "www-authenticate": 'Bearer realm="wsport"',
    });
  }
  c.set("user", "token holder");
  await next();
});
const privateSocket = websocket<{ user: string }, Context<AppEnv>>(async (ws) => {
  await ws.send(`hello, ${ws.data.user}`);
  await echo(ws);
}, { data: (c) => ({ user: c.get("user") }) });
app.get("/private/ws", privateSocket);

/** `Bun.serve`, as far as this example uses it (the project type-checks with Deno). */
interface BunRuntime {
  serve(options: {
    hostname: string;
    port: number;
    fetch: typeof app.fetch;
    websocket: typeof bunWebSocket;
  }): { hostname: string; port: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

let stopHttp: () => Promise<void>;
const listening = (addr: { hostname: string; port: number }) =>
  console.log(`listening on http://${addr.hostname}:${addr.port} (GET /, ws /ws, ws /private/ws)`);
if ("Bun" in globalThis) {
  const { Bun } = globalThis as unknown as { Bun: BunRuntime };
  const server = Bun.serve({ hostname, port, fetch: app.fetch, websocket: bunWebSocket });
  listening(server);
  stopHttp = () => server.stop();
} else {
  const server = Deno.serve({ hostname, port, onListen: listening }, app.fetch);
  stopHttp = () => server.shutdown();
}

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // The WebSockets first (every client gets 1001), then the HTTP server.
  await Promise.all([publicSocket.close(), privateSocket.close()]);
  await stopHttp();
  console.log("stopped");
  process.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void shutdown());
