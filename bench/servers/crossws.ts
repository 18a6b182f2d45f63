/**
 * The crossws peer server (npm `crossws`, its Deno and Bun adapters): the
 * same workloads as ./raw.ts, written as crossws hooks. Broadcast uses
 * crossws's own pub/sub (`peer.subscribe`, the adapter's `publish`: native
 * on Bun, a loop over peers on Deno). Run under deno or bun; prints
 * `{ port, pid, runtime }` once listening.
 */
import { defineHooks } from "crossws";
import {
  announce,
  control,
  hostname,
  isBun,
  parsePublish,
  publishLoop,
  sessionFor,
  TOPIC,
} from "./common.ts";

interface Adapter {
  publish(topic: string, data: string): void;
}

let adapter: Adapter;

const hooks = defineHooks({
  upgrade(request) {
    return { context: { ...sessionFor(new URL(request.url)) } };
  },
  open(peer) {
    if (peer.context.workload !== "broadcast") return;
    peer.subscribe(TOPIC);
    peer.send("ready");
  },
  message(peer, message) {
    if (peer.context.workload === "echo") {
      peer.send(message.rawData);
      return;
    }
    const trigger = parsePublish(message.rawData);
    if (trigger) {
      publishLoop(trigger.count, trigger.size, (data) => adapter.publish(TOPIC, data))
        .then((report) => peer.send(report));
    }
  },
});

if (isBun) {
  const { default: bunAdapter } = await import("crossws/adapters/bun");
  const ws = bunAdapter({ hooks });
  adapter = ws;
  const Bun = (globalThis as unknown as {
    Bun: {
      serve(options: {
        hostname: string;
        port: number;
        fetch(request: Request, server: unknown): Response | Promise<Response | undefined>;
        websocket: unknown;
      }): { port: number };
    };
  }).Bun;
  const server = Bun.serve({
    hostname,
    port: 0,
    fetch(request, server) {
      const answer = control(new URL(request.url));
      if (answer) return answer;
      // deno-lint-ignore no-explicit-any
      return ws.handleUpgrade(request, server as any);
    },
    websocket: ws.websocket,
  });
  announce(server.port);
} else {
  const { default: denoAdapter } = await import("crossws/adapters/deno");
  const ws = denoAdapter({ hooks });
  adapter = ws;
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, (request, info) => {
    const answer = control(new URL(request.url));
    if (answer) return answer;
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Upgrade Required", { status: 426 });
    }
    return ws.handleUpgrade(request, info);
  });
  announce(server.addr.port);
}
