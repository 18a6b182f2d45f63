/**
 * wsport against the raw runtimes, same run, same machine: `npm run bench`
 * (add `-- --quick` for a run under two minutes, `-- --json` for one JSON
 * object as the last line of stdout).
 *
 * The driver runs on Deno. Servers are separate processes
 * (`bench/servers/{raw,wsport,crossws,hono}.ts`, under deno and under bun);
 * the load generator is `bench/load.ts` under Deno, one long-lived process.
 * The pieces are in `bench/lib/`: the machine, child processes, servers,
 * load generators, the workloads (a table, `workloads.ts`, run by the one
 * loop in `runner.ts`), the samples they record and the report.
 * Where `taskset` works, servers are pinned to one core and the load
 * generator (and this driver) to another. Every measured window reads the
 * server's CPU time from `/proc/<pid>/stat`: the table gives CPU per message
 * next to throughput and flags runs where the server core was under 90 %
 * busy as client-bound.
 *
 * Workloads (raw and wsport alternate, A B A B, `--reps` pairs; medians and
 * min–max spreads are reported, and the ratio wsport/raw):
 * 1. echo throughput: 100 connections × 50 messages in flight; 32 B text,
 *    1 KiB binary, 16 KiB binary (crossws and Hono too);
 * 2. echo latency: 100 connections × 1 message in flight; p50/p99 round trip;
 * 3. broadcast: 500 clients, 1,000 publishes of 64 B (raw Bun: native
 *    `server.publish`; raw Deno: a send loop; wsport: `server.publish`;
 *    crossws: its pub/sub; Hono: a send loop);
 * 4. connection churn: upgrades per second through a handshake hook that
 *    attaches data;
 * 5. idle memory: server RSS delta per connection at 5,000 connections;
 * 6. slow consumer: bench/slow_consumer.ts (peak RSS growth).
 *
 * Runtimes: Deno (raw = Deno.serve + Deno.upgradeWebSocket; wsport on its default ws engine, and on the
 * native engine as "wsport-native"), Bun (raw = Bun.serve), Node 24 (raw = the ws package on node:http
 * doing the same work; wsport on the ws engine).
 *
 * Flags: `--quick`, `--json`, `--reps N`, `--runtimes deno,bun,node`,
 * `--workloads echo,latency,broadcast,churn,idle,slow`, `--no-peers`.
 * For experiments, `WSPORT_OPTIONS='{"maxQueue":1024}'` in the environment
 * overrides the wsport servers' options (the report says so).
 * `RAW_KEEPS_HEADERS=1` makes the raw servers keep a copy of each upgrade
 * request's URL and headers, as wsport does for `ws.request` (idle memory).
 *
 * @module
 */

import { Load } from "./lib/load_generators.ts";
import { pinProcess, probeMachine } from "./lib/machine.ts";
import { killAll, type Runtime } from "./lib/processes.ts";
import { log, report, startLine } from "./lib/report.ts";
import { runWorkload } from "./lib/runner.ts";
import { notes } from "./lib/samples.ts";
import { type Impl, installedPeers, noteWsportCounters, withServers } from "./lib/servers.ts";
import { slowConsumer } from "./lib/slow.ts";
import { FULL, QUICK, warmUp, workloadTable } from "./lib/workloads.ts";

const args = Deno.args;
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
};

const quick = flag("quick");
const sizes = { ...(quick ? QUICK : FULL) };
if (option("reps")) sizes.reps = Math.max(1, Number(option("reps")));
const runtimes = (option("runtimes") ?? "deno,bun,node").split(",") as Runtime[];
const picked = new Set((option("workloads") ?? "echo,latency,broadcast,churn,idle,slow").split(","));
const workloads = workloadTable(sizes).filter((workload) => picked.has(workload.name));
// Workloads on the runtime's shared servers run first, then those that start their own.
const shared = workloads.filter((workload) => !workload.ownServer);
const own = workloads.filter((workload) => workload.ownServer);

const machine = await probeMachine(option("load-procs"));
if (quick) {
  notes.push(
    "quick mode: 300 ms windows (full: 3 s), broadcast 100 publishes (full: 1,000), idle memory and slow " +
      "consumer one pair each (full: 3); numbers are for checking the harness, not for quoting",
  );
}
const wsportOptions = Deno.env.get("WSPORT_OPTIONS");
if (wsportOptions) notes.push(`wsport servers ran with WSPORT_OPTIONS=${wsportOptions}, not the defaults`);
if (Deno.env.get("RAW_KEEPS_HEADERS") === "1") {
  notes.push("raw servers kept a copy of each upgrade request's URL and headers (RAW_KEEPS_HEADERS=1)");
}
if (machine.pinned) await pinProcess(Deno.pid, machine.pinned.loadGenerators[0]);
else notes.push("taskset unavailable or a single core: processes are not pinned");
const peers = flag("no-peers") ? [] : installedPeers();

let exitCode = 0;
const started = performance.now();
const cleanup = async () => {
  await killAll();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", cleanup);
Deno.addSignalListener("SIGTERM", cleanup);

log(startLine(machine, quick));
const load = new Load(machine);
try {
  for (const runtime of runtimes) {
    if (shared.length) {
      // crossws and Hono embed in Deno.serve and Bun.serve: not on Node. Deno runs wsport on both engines.
      const impls: Impl[] = runtime === "node"
        ? ["raw", "wsport"]
        : runtime === "deno"
        ? ["raw", "wsport", "wsport-native", ...peers]
        : ["raw", "wsport", ...peers];
      await withServers(machine, runtime, impls, async (servers) => {
        await warmUp(load, servers, quick);
        for (const workload of shared) await runWorkload(workload, { machine, load, runtime, servers });
        await noteWsportCounters(servers.get("wsport")!);
      });
    }
    for (const workload of own) await runWorkload(workload, { machine, load, runtime });
  }
  await load.stop();
  if (picked.has("slow")) await slowConsumer(sizes.slow);
} catch (error) {
  log(`bench failed: ${error instanceof Error ? error.stack : error}`);
  exitCode = 1;
} finally {
  await killAll();
}

const { markdown, json } = report({ machine, quick, reps: sizes.reps, peers, started });
if (flag("json")) {
  log(markdown);
  console.log(JSON.stringify(json));
} else {
  console.log(markdown);
}
Deno.exit(exitCode);
