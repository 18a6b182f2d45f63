/**
 * The workloads, as a table: what each runs against one server and what it
 * records. bench/lib/runner.ts runs each one for every rep and implementation.
 * The slow consumer is not in the table: it is a separate script that measures
 * every runtime and implementation itself (bench/lib/slow.ts).
 *
 * @module
 */
import { idleWorkload } from "./idle.ts";
import type { Workload } from "./runner.ts";
import { windowed } from "./runner.ts";
import type { Load } from "./load_generators.ts";
import { type Impl, type ServerProcess, wsUrl } from "./servers.ts";

/** Sizes of a quick run (for checking the harness) and of a full one (for quoting). */
export const QUICK = {
  reps: 3,
  echo: { warmupMs: 100, windowMs: 300 },
  latency: { warmupMs: 100, windowMs: 300 },
  broadcast: { clients: 500, publishes: 100, size: 64 },
  churn: { concurrency: 16, warmupMs: 100, windowMs: 300 },
  idle: { count: 5000, reps: 1 },
  slow: { seconds: 1, reps: 1 },
};
export const FULL: Sizes = {
  reps: 5,
  echo: { warmupMs: 1000, windowMs: 3000 },
  latency: { warmupMs: 1000, windowMs: 3000 },
  broadcast: { clients: 500, publishes: 1000, size: 64 },
  churn: { concurrency: 16, warmupMs: 500, windowMs: 2000 },
  idle: { count: 5000, reps: 3 },
  slow: { seconds: 3, reps: 3 },
};
export type Sizes = typeof QUICK;

const PAYLOADS = [
  { key: "echo-text-32", label: "32 B text", kind: "text", size: 32 },
  { key: "echo-binary-1k", label: "1 KiB binary", kind: "binary", size: 1024 },
  { key: "echo-binary-16k", label: "16 KiB binary", kind: "binary", size: 16 * 1024 },
] as const;

interface Echo {
  inflight: number;
  kind: "text" | "binary";
  size: number;
  warmupMs: number;
  windowMs: number;
}

/** 100 connections, each keeping `inflight` messages in flight, split between the load generators. */
function echo(load: Load, server: ServerProcess, { inflight, kind, size, warmupMs, windowMs }: Echo) {
  const command = { cmd: "echo", url: wsUrl(server, "/echo"), pid: server.pid, conns: 100, inflight };
  return load.split({ ...command, kind, size, warmupMs, windowMs }, "conns");
}

/** One short run per server, so that the first measured run is not the JIT's warm-up. */
export async function warmUp(load: Load, servers: Map<Impl, ServerProcess>, quick: boolean) {
  for (const server of servers.values()) {
    await echo(load, server, {
      inflight: 50,
      kind: "text",
      size: 32,
      warmupMs: 0,
      windowMs: quick ? 200 : 1000,
    });
  }
}

/** Every workload, in the order they run on each runtime. */
export function workloadTable(sizes: Sizes): Workload[] {
  const { clients, publishes, size } = sizes.broadcast;
  return [
    ...PAYLOADS.map((payload): Workload => ({
      name: "echo",
      series: {
        [payload.key]: {
          workload: `echo throughput, ${payload.label} (100 conns × 50 in flight)`,
          unit: "msg/s",
          lowerIsBetter: false,
          cpu: "server CPU µs/msg",
        },
      },
      reps: sizes.reps,
      peers: true,
      ownServer: false,
      async run(load, server) {
        const answer = await echo(load, server, {
          inflight: 50,
          kind: payload.kind,
          size: payload.size,
          ...sizes.echo,
        });
        return windowed(answer, { [payload.key]: answer.rate });
      },
    })),
    {
      name: "latency",
      series: {
        "latency-p50": {
          workload: "echo latency p50 (100 conns × 1 in flight, 32 B)",
          unit: "ms",
          lowerIsBetter: true,
        },
        "latency-p99": {
          workload: "echo latency p99 (100 conns × 1 in flight, 32 B)",
          unit: "ms",
          lowerIsBetter: true,
        },
      },
      reps: sizes.reps,
      peers: false,
      ownServer: false,
      async run(load, server) {
        const answer = await echo(load, server, { inflight: 1, kind: "text", size: 32, ...sizes.latency });
        return windowed(answer, { "latency-p50": answer.p50Ms, "latency-p99": answer.p99Ms });
      },
    },
    {
      name: "broadcast",
      series: {
        broadcast: {
          workload: `broadcast fan-out (${clients} clients × ${publishes} publishes × ${size} B)`,
          unit: "deliveries/s",
          lowerIsBetter: false,
          cpu: "server CPU µs/delivery",
        },
      },
      reps: sizes.reps,
      peers: true,
      ownServer: false,
      async run(load, server) {
        const answer = await load.run({
          cmd: "broadcast",
          url: wsUrl(server, "/broadcast"),
          pid: server.pid,
          clients,
          publishes,
          size,
          stallMs: 2000,
        });
        return windowed(answer, { broadcast: answer.rate });
      },
    },
    {
      name: "churn",
      series: {
        churn: {
          workload:
            `connection churn (open, close; ${sizes.churn.concurrency} at a time; hook attaches data)`,
          unit: "upgrades/s",
          lowerIsBetter: false,
          cpu: "server CPU µs/upgrade",
        },
      },
      reps: sizes.reps,
      peers: false,
      ownServer: false,
      async run(load, server) {
        const answer = await load.split({
          cmd: "churn",
          url: wsUrl(server, "/churn"),
          pid: server.pid,
          ...sizes.churn,
        }, "concurrency");
        return windowed(answer, { churn: answer.rate });
      },
    },
    idleWorkload(sizes.idle),
  ];
}
