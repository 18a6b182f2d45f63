/**
 * The benchmark servers (`bench/servers/{raw,wsport,crossws,hono}.ts`), each
 * in its own process under deno or bun, pinned to the servers' core.
 *
 * @module
 */
import type { Machine } from "./machine.ts";
import { binaries, exists, kill, Lines, root, type Runtime, spawn, tail } from "./processes.ts";
import { notes } from "./samples.ts";

/**
 * "wsport": wsport on the runtime's default engine (on Deno the ws engine, set explicitly so that the
 * caller's WSPORT_DENO_ENGINE cannot change it); "wsport-native": on Deno's native engine
 * (WSPORT_DENO_ENGINE=native).
 */
export type Impl = "raw" | "wsport" | "wsport-native" | "crossws" | "hono";

export interface ServerProcess {
  runtime: Runtime;
  impl: Impl;
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  stderr: () => string;
}

export const wsUrl = (server: ServerProcess, path: string) => `ws://127.0.0.1:${server.port}${path}`;

export async function startServer(machine: Machine, runtime: Runtime, impl: Impl): Promise<ServerProcess> {
  const script = `bench/servers/${impl === "wsport-native" ? "wsport" : impl}.ts`;
  const commandArgs = runtime === "deno"
    ? ["run", "-A", "--no-lock", "--v8-flags=--expose-gc", script]
    : runtime === "node"
    ? ["--expose-gc", script]
    : [script];
  const env: Record<string, string> = impl === "wsport-native"
    ? { WSPORT_DENO_ENGINE: "native" }
    : impl === "wsport"
    ? { WSPORT_DENO_ENGINE: "ws" }
    : {};
  const child = spawn(binaries[runtime], commandArgs, { core: machine.pinned?.server, env });
  child.stdin.close();
  const stderr = tail(child.stderr);
  const line = await new Lines(child.stdout).next(20_000);
  if (!line) {
    await kill(child);
    throw new Error(`${runtime} ${impl} server did not start: ${stderr()}`);
  }
  const { port, pid } = JSON.parse(line);
  if (pid !== child.pid) {
    notes.push(`${runtime} ${impl}: server pid ${pid} is not the spawned pid ${child.pid}`);
  }
  return { runtime, impl, child, pid, port, stderr };
}

/** Starts one server per implementation, runs `use` with them, and stops them (also when `use` throws). */
export async function withServers(
  machine: Machine,
  runtime: Runtime,
  impls: Impl[],
  use: (servers: Map<Impl, ServerProcess>) => Promise<void>,
): Promise<void> {
  const servers = new Map<Impl, ServerProcess>();
  try {
    for (const impl of impls) servers.set(impl, await startServer(machine, runtime, impl));
    await use(servers);
  } finally {
    for (const server of servers.values()) await kill(server.child);
  }
}

/** crossws and Hono, where npm installed them (the report notes a missing one). */
export function installedPeers(): Impl[] {
  const peers: Impl[] = [];
  if (exists(`${root}node_modules/crossws/package.json`)) peers.push("crossws");
  else notes.push("crossws is not installed (npm ci): no crossws column");
  if (exists(`${root}node_modules/hono/package.json`)) peers.push("hono");
  else notes.push("hono is not installed (npm ci): no Hono column");
  return peers;
}

/** Notes limit closes or drops that wsport's counters report after a runtime's workloads. */
export async function noteWsportCounters(server: ServerProcess): Promise<void> {
  const counters = await fetch(`http://127.0.0.1:${server.port}/__counters`).then((r) => r.json());
  const drops = counters.droppedMessages + Object.values(counters.closed as Record<string, number>)
    .reduce((a, b) => a + b, 0);
  if (drops) {
    notes.push(
      `wsport on ${server.runtime}: counters report limit closes or drops ${JSON.stringify(counters)}`,
    );
  }
}
