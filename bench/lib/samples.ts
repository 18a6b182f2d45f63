/**
 * What a run records for the report: one sample per measured run, by series,
 * runtime and implementation; what each series is; and notes on how the run
 * went.
 *
 * @module
 */
import type { Answer } from "./load_generators.ts";
import type { Runtime } from "./processes.ts";
import type { Impl } from "./servers.ts";

export interface Sample {
  value: number;
  cpuPerMsgUs?: number | null;
  serverBusy?: number;
  clientBusy?: number;
  extra?: Record<string, number | null>;
  problems: string[];
}

/** What the report says of a series: its name, its unit, and what its CPU column measures, if it has one. */
export interface Series {
  workload: string;
  unit: string;
  lowerIsBetter: boolean;
  cpu?: string;
}

/** samples[key][runtime][impl] */
export const samples = new Map<string, Map<Runtime, Map<Impl, Sample[]>>>();
export const series = new Map<string, Series>();
/** Notes printed under the table (and in the JSON): settings, and anything that went wrong. */
export const notes: string[] = [];

export function record(key: string, runtime: Runtime, impl: Impl, sample: Sample) {
  if (!samples.has(key)) samples.set(key, new Map());
  const byRuntime = samples.get(key)!;
  if (!byRuntime.has(runtime)) byRuntime.set(runtime, new Map());
  const byImpl = byRuntime.get(runtime)!;
  if (!byImpl.has(impl)) byImpl.set(impl, []);
  byImpl.get(impl)!.push(sample);
}

/** What every windowed workload records beside its value: server CPU, busy shares, problems. */
export function measured(answer: Answer) {
  return {
    cpuPerMsgUs: answer.serverCpuPerMsgUs,
    serverBusy: answer.serverBusy,
    clientBusy: answer.clientBusy,
    problems: problemsOf(answer),
  };
}

/** Problems a load-generator answer reports: failed connections, wrong echoes, unexpected closes. */
export function problemsOf(answer: Answer): string[] {
  const problems: string[] = [];
  if (!answer.ok) return [`error: ${answer.error}`];
  if (answer.failedConnections) problems.push("some connections failed to open");
  if (answer.failed) {
    problems.push(`handshakes failed: ${Object.keys(answer.errors ?? {}).sort().join(", ")}`);
  }
  if (answer.wrongSize) problems.push("echoes of the wrong size");
  // Codes only (no counts), so that the table can say in how many runs each kind happened.
  const closes = Object.keys(answer.unexpectedCloses ?? {}).map((k) => k === "0" ? "0 (no close frame)" : k)
    .sort();
  if (closes.length) problems.push(`connections closed by the server: ${closes.join(", ")}`);
  if (answer.notClosed) problems.push("connections that did not close when asked");
  if (answer.expected !== undefined && answer.delivered < answer.expected) {
    problems.push("not every delivery arrived");
  }
  if (answer.serverReport?.skipped) problems.push("the server skipped slow subscribers");
  return problems;
}
