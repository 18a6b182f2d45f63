/**
 * What a workload is, and the loop every workload runs in: for each rep, for
 * each implementation (raw and wsport alternating, A B A B, then the peers):
 * run once, record the samples, print a progress line.
 *
 * @module
 */
import type { Answer, Load } from "./load_generators.ts";
import type { Machine } from "./machine.ts";
import { kill, type Runtime } from "./processes.ts";
import { log, pct } from "./report.ts";
import { measured, problemsOf, record, type Sample, type Series, series } from "./samples.ts";
import { type Impl, type ServerProcess, startServer } from "./servers.ts";

/** What one run of a workload against one server gives: a sample per series, and a progress line. */
export interface Outcome {
  samples: Record<string, Sample>;
  progress: string;
}

export interface Workload {
  /** The name `--workloads` picks it by. */
  name: string;
  /** The series it records, by sample key. */
  series: Record<string, Series>;
  /** Runs per implementation. */
  reps: number;
  /** crossws and Hono run it too (on every server of the runtime), not only raw and wsport. */
  peers: boolean;
  /** Its own server for each run, instead of the runtime's shared ones (so that it measures that server's memory). */
  ownServer: boolean;
  /** One run against one server. */
  run(load: Load, server: ServerProcess): Promise<Outcome>;
}

/** The outcome of a measured window: each value with the server CPU, busy shares and problems of the answer. */
export function windowed(answer: Answer, values: Record<string, number | null | undefined>): Outcome {
  const samples: Record<string, Sample> = {};
  for (const [key, value] of Object.entries(values)) {
    samples[key] = { value: value ?? NaN, ...measured(answer) };
  }
  const value = answer.p50Ms !== undefined
    ? `p50 ${answer.p50Ms?.toFixed(3)} ms p99 ${answer.p99Ms?.toFixed(3)} ms`
    : `${Math.round(answer.rate ?? NaN)}/s`;
  const problems = problemsOf(answer);
  return {
    samples,
    progress: `${value}, server ${answer.serverCpuPerMsgUs ?? "?"} µs/msg, busy ${
      pct(answer.serverBusy)
    } (client ${pct(answer.clientBusy)})${problems.length ? " ! " + problems.join("; ") : ""}`,
  };
}

interface Context {
  machine: Machine;
  load: Load;
  runtime: Runtime;
  /** The runtime's shared servers, for workloads without their own. */
  servers?: Map<Impl, ServerProcess>;
}

/** For each rep and implementation: run, record, report. */
export async function runWorkload(workload: Workload, { machine, load, runtime, servers }: Context) {
  const keys = Object.keys(workload.series);
  for (const key of keys) series.set(key, workload.series[key]);
  // Progress lines name the series, or the workload when it records several.
  const label = keys.length === 1 ? keys[0] : workload.name;
  // On Deno wsport runs on both engines: the default (ws) and the native one.
  const wsports: Impl[] = runtime === "deno" ? ["wsport", "wsport-native"] : ["wsport"];
  const impls: Impl[] = workload.peers ? [...servers!.keys()] : ["raw", ...wsports];
  for (let rep = 0; rep < workload.reps; rep++) {
    for (const impl of impls) {
      const server = workload.ownServer ? await startServer(machine, runtime, impl) : servers!.get(impl)!;
      try {
        const outcome = await workload.run(load, server);
        for (const [key, sample] of Object.entries(outcome.samples)) record(key, runtime, impl, sample);
        log(`  ${label} ${runtime} ${impl}: ${outcome.progress}`);
      } finally {
        if (workload.ownServer) await kill(server.child);
      }
    }
  }
}
