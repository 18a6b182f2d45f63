/**
 * wsport on Deno Deploy: the entry as Deploy runs it, a `deno serve` module
 * whose default export is `{ fetch }`. No permission flags: `deno serve`
 * grants the listener itself, and the server needs nothing else.
 *
 *   deno serve examples/deploy.ts            # locally, on http://localhost:8000
 *
 *   GET /     200, a short text
 *   GET /ws   echo WebSocket (text as text, binary as binary); plain HTTP gets 426
 *
 * Shutdown: Deploy gives a stopping instance a grace period of about 5 s.
 * Locally, `deno serve` handles SIGTERM itself: it closes every WebSocket
 * with 1001 ("Server shutting down") and exits at once, well within such a
 * period; handlers see that close as usual (iteration ends). Where SIGTERM
 * arrives without that handling, the listener below drains through wsport
 * (1001 "going away", bounded by `closeTimeout: 3000` even for a peer that
 * never answers its close frame) and exits.
 *
 * Fan-out across instances: Deploy runs several isolates (and regions), and
 * its cross-region `BroadcastChannel` is being retired, so topics that must
 * reach every instance go through the Redis backend
 * (`pubsub: redisBackend(Deno.env.get("REDIS_URL"))` from
 * `@wsport/wsport/redis`, which needs `--allow-env` and `--allow-net` locally).
 */
import { createServer } from "../mod.ts";

const wss = createServer(async (ws) => {
  for await (const message of ws) await ws.send(message);
}, {
  closeTimeout: 3000,
  processRequest(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/") return new Response("wsport on Deno Deploy: a WebSocket echo on /ws\n");
    if (pathname !== "/ws") return new Response("404 Not Found\n", { status: 404 });
  },
});

try {
  // Under `deno serve` Deno's own SIGTERM shutdown usually ends the process first.
  Deno.addSignalListener("SIGTERM", () => {
    wss.close().finally(() => Deno.exit(0));
  });
} catch {
  // No signals where the platform does not deliver them; the platform's own shutdown applies.
}

export default { fetch: wss.fetch } satisfies Deno.ServeDefaultExport;
