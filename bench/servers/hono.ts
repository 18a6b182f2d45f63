/**
 * The Hono peer server (npm `hono`, its `upgradeWebSocket` helper from
 * `hono/deno` or `hono/bun`): the same workloads as ./raw.ts. Hono has no
 * pub/sub, so broadcast is a send loop over the open sockets, as a Hono user
 * writes it. Run under deno or bun; prints `{ port, pid, runtime }` once
 * listening.
 */
import { Hono } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import { announce, control, hostname, isBun, parsePublish, publishLoop, sessionFor } from "./common.ts";

const { upgradeWebSocket, websocket } = isBun
  ? await import("hono/bun") as unknown as { upgradeWebSocket: UpgradeWebSocket; websocket: unknown }
  : {
    upgradeWebSocket: (await import("hono/deno")).upgradeWebSocket as UpgradeWebSocket,
    websocket: undefined,
  };

/** Broadcast subscribers, by the runtime's socket (Bun makes a new WSContext for every event). */
const subscribers = new Map<unknown, WSContext>();

const app = new Hono();
app.get("/__gc", (c) => control(new URL(c.req.url))!);
app.get(
  "/:workload",
  upgradeWebSocket((c) => {
    const data = sessionFor(new URL(c.req.url));
    if (data.workload === "echo") {
      return { onMessage: (event, ws) => ws.send(event.data as string | ArrayBuffer) };
    }
    if (data.workload !== "broadcast") return {};
    return {
      onOpen(_event, ws) {
        subscribers.set(ws.raw, ws);
        ws.send("ready");
      },
      onClose(_event, ws) {
        subscribers.delete(ws.raw);
      },
      onMessage(event, ws) {
        const trigger = parsePublish(event.data);
        if (!trigger) return;
        publishLoop(trigger.count, trigger.size, (payload) => {
          for (const subscriber of subscribers.values()) subscriber.send(payload);
        }).then((report) => ws.send(report));
      },
    };
  }),
);

if (isBun) {
  const Bun = (globalThis as unknown as {
    Bun: {
      serve(
        options: { hostname: string; port: number; fetch: unknown; websocket: unknown },
      ): { port: number };
    };
  }).Bun;
  const server = Bun.serve({ hostname, port: 0, fetch: app.fetch, websocket });
  announce(server.port);
} else {
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, app.fetch);
  announce(server.addr.port);
}
