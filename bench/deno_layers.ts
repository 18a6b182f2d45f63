/**
 * What Deno's Node layer costs: the same echo and churn workloads against
 * three servers on Deno, alternating (A B C, `--reps` rounds):
 * - `Deno.serve` + `Deno.upgradeWebSocket` (bench/servers/raw.ts),
 * - the `ws` package on `node:http`, no wsport (bench/servers/raw.ts with `RAW_WS=1`),
 * - wsport on its ws engine (bench/servers/wsport.ts, `WSPORT_DENO_ENGINE=ws`).
 *
 * The middle column is the floor for wsport's ws engine on Deno: it runs on
 * that layer. `deno run -A bench/deno_layers.ts [--reps 3] [--window 300]`
 * prints a markdown table (medians, min–max, server CPU per message).
 *
 * @module
 */
import { Load } from "./lib/load_generators.ts";
import { loadavg, probeMachine } from "./lib/machine.ts";
import { binaries, kill, Lines, spawn } from "./lib/processes.ts";

const args = Deno.args;
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const reps = option("reps", 3);
const windowMs = option("window", 300);

const servers: { name: string; script: string; env: Record<string, string> }[] = [
  { name: "Deno.serve", script: "bench/servers/raw.ts", env: {} },
  { name: "ws on node:http", script: "bench/servers/raw.ts", env: { RAW_WS: "1" } },
  { name: "wsport (ws engine)", script: "bench/servers/wsport.ts", env: { WSPORT_DENO_ENGINE: "ws" } },
];
const workloads = [
  {
    name: "echo 32 B text (msg/s)",
    path: "/echo",
    cmd: { cmd: "echo", conns: 100, inflight: 50, kind: "text", size: 32 },
  },
  {
    name: "echo 1 KiB binary (msg/s)",
    path: "/echo",
    cmd: { cmd: "echo", conns: 100, inflight: 50, kind: "binary", size: 1024 },
  },
  { name: "churn (upgrades/s)", path: "/churn", cmd: { cmd: "churn", concurrency: 16 } },
];

const machine = await probeMachine(undefined);
const load = new Load(machine);
const started = await Promise.all(servers.map(async (server) => {
  const child = spawn(binaries.deno, ["run", "-A", "--no-lock", server.script], {
    core: machine.pinned?.server,
    env: server.env,
  });
  child.stdin.close();
  const { port, pid } = JSON.parse((await new Lines(child.stdout).next(20_000))!);
  return { ...server, child, port, pid };
}));

const before = loadavg();
/** results[workload][server]: rates and CPU µs per message (or upgrade). */
const results = workloads.map(() => servers.map(() => ({ rates: [] as number[], cpu: [] as number[] })));
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const [w, workload] of workloads.entries()) {
      for (const [s, server] of started.entries()) {
        const answer = await load.run({
          ...workload.cmd,
          url: `ws://127.0.0.1:${server.port}${workload.path}`,
          pid: server.pid,
          warmupMs: 100,
          windowMs,
        });
        if (!answer.ok) throw new Error(`${server.name} ${workload.name}: ${answer.error}`);
        results[w][s].rates.push(answer.rate);
        results[w][s].cpu.push(answer.serverCpuPerMsgUs);
      }
    }
  }
} finally {
  await load.stop();
  for (const server of started) await kill(server.child);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (values: number[]) =>
  `${Math.round(median(values)).toLocaleString("en")} (${
    Math.round(Math.min(...values)).toLocaleString("en")
  }–${Math.round(Math.max(...values)).toLocaleString("en")})`;
const version = Deno.version.deno;
console.log(
  `Deno ${version}, ${reps} rounds of ${windowMs} ms windows, servers alternating; load average ${before} before, ` +
    `${loadavg()} after.\n`,
);
console.log(`| workload | ${servers.map((server) => server.name).join(" | ")} | ws/Deno.serve | wsport/ws |`);
console.log(`| --- | ${servers.map(() => "---").join(" | ")} | --- | --- |`);
for (const [w, workload] of workloads.entries()) {
  const [raw, ws, wsport] = results[w].map((result) => median(result.rates));
  const cells = results[w].map((result) => `${fmt(result.rates)}; ${median(result.cpu).toFixed(1)} µs`);
  console.log(
    `| ${workload.name} | ${cells.join(" | ")} | ${(ws / raw).toFixed(2)} | ${(wsport / ws).toFixed(2)} |`,
  );
}
console.log("\nEach cell: median rate (min–max); median server CPU per message (or upgrade).");
