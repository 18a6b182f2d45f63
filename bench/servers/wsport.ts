/**
 * The wsport benchmark server: the same workloads as ./raw.ts, written the
 * way the README shows (`for await` + `await ws.send`, `processRequest`
 * attaching data, `ws.subscribe` + `server.publish`). Default limits.
 * `GET /__counters` answers with `server.counters` (limit closes, drops, skips).
 * Run under deno or bun; prints `{ port, pid, runtime }` once listening.
 */
import process from "node:process";
import { serve, type Server } from "../../mod.ts";
import {
  announce,
  control,
  hostname,
  parsePublish,
  publishLoop,
  type SessionData,
  sessionFor,
  TOPIC,
} from "./common.ts";

const server: Server<SessionData> = serve<SessionData>(async (ws) => {
  switch (ws.data.workload) {
    case "echo":
      for await (const message of ws) await ws.send(message);
      break;
    case "broadcast":
      ws.subscribe(TOPIC);
      await ws.send("ready");
      for await (const message of ws) {
        const trigger = parsePublish(message);
        if (!trigger) continue;
        const report = await publishLoop(
          trigger.count,
          trigger.size,
          (data) => void server.publish(TOPIC, data),
          () => server.counters.pubsub.skipped,
        );
        await ws.send(report);
      }
      break;
    default: // churn, idle: hold the connection until the peer closes it
      for await (const _ of ws);
  }
}, {
  // Experiments only (the bench runs the defaults): WSPORT_OPTIONS='{"maxQueue":1024}' overrides options.
  ...JSON.parse(process.env.WSPORT_OPTIONS ?? "{}"),
  hostname,
  port: 0,
  processRequest(_request, context): Response | undefined {
    const answer = control(context.url);
    if (answer) return answer;
    if (context.url.pathname === "/__counters") return Response.json(server.counters);
    context.data = sessionFor(context.url);
  },
});
announce(server.addr.port);
