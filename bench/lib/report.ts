/**
 * What the bench prints: progress on stderr while it runs, then a markdown
 * table (medians, min–max, wsport/raw ratios, server CPU per message) and,
 * with `--json`, one JSON object `{ machine, results, notes }` as the last
 * line of stdout.
 *
 * @module
 */
import { loadavg, type Machine } from "./machine.ts";
import type { Impl } from "./servers.ts";
import { notes, type Sample, samples, series } from "./samples.ts";

/** Progress goes to stderr, so that stdout holds only the report. */
export const log = (message: string) => console.error(message);

export const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? "?" : `${Math.round(x * 100)}%`;

/** The line the run starts with: the machine, and where processes are pinned. */
export function startLine(machine: Machine, quick: boolean): string {
  const { cores, model, versions, pinned } = machine;
  return `wsport bench (${
    quick ? "quick" : "full"
  }): ${cores} × ${model}; deno ${versions.deno}, bun ${versions.bun}, node ${versions.node}; ` +
    (pinned
      ? `servers on core ${pinned.server}, load generator(s) on core(s) ${pinned.loadGenerators.join(",")}`
      : "not pinned");
}

const median = (values: number[]) => {
  const sorted = values.filter((v) => !Number.isNaN(v) && v !== null && v !== undefined).sort((a, b) =>
    a - b
  );
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (x: number, digits = 3) => Number.isFinite(x) ? +x.toPrecision(digits + 2) : null;

interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  cpuPerMsgUs: number;
  serverBusy: number;
  clientBound: number;
  problems: string[];
}

function summarize(list: Sample[] | undefined): Summary | undefined {
  if (!list?.length) return undefined;
  const values = list.map((s) => s.value).filter(Number.isFinite);
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    n: list.length,
    cpuPerMsgUs: median(list.map((s) => s.cpuPerMsgUs ?? NaN)),
    serverBusy: median(list.map((s) => s.serverBusy ?? NaN)),
    clientBound: list.filter((s) => s.serverBusy !== undefined && s.serverBusy < 0.9).length,
    problems: [...new Set(list.flatMap((s) => s.problems))].map((problem) =>
      `${problem} (${list.filter((s) => s.problems.includes(problem)).length}/${list.length} runs)`
    ),
  };
}

const fmt = (x: number, unit: string) => {
  if (!Number.isFinite(x)) return "–";
  if (unit === "ms") return x.toFixed(3);
  if (unit === "MiB") return x.toFixed(1);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toPrecision(3);
};
const spread = (s: Summary | undefined, unit: string) =>
  s ? `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})` : "–";

export interface Run {
  machine: Machine;
  quick: boolean;
  /** Runs per implementation of the windowed workloads. */
  reps: number;
  /** The peer implementations that ran (crossws, Hono): the table has their columns when there are any. */
  peers: Impl[];
  /** `performance.now()` when the run started. */
  started: number;
}

/** The markdown table, and the JSON object `--json` prints, from every sample recorded. */
export function report({ machine, quick, reps, peers, started }: Run) {
  const { cores, model, versions, pinned, loadBefore } = machine;
  const results: Record<string, unknown>[] = [];
  const tableRows: string[][] = [];
  for (const [key, byRuntime] of samples) {
    const info = series.get(key)!;
    for (const [runtime, byImpl] of byRuntime) {
      const raw = summarize(byImpl.get("raw"));
      const wsport = summarize(byImpl.get("wsport"));
      const ratio = raw && wsport ? wsport.median / raw.median : NaN;
      const peerResults: Record<string, unknown> = {};
      const peerCells: string[] = [];
      // wsport on Deno's native engine first (Deno only), then the peers.
      for (const peer of ["wsport-native", "crossws", "hono"] as const) {
        const summary = summarize(byImpl.get(peer));
        if (summary && raw) {
          peerResults[peer] = {
            value: round(summary.median),
            min: round(summary.min),
            max: round(summary.max),
            ratio: round(summary.median / raw.median),
            cpuPerMsgUs: round(summary.cpuPerMsgUs),
            cpuRatio: round(summary.cpuPerMsgUs / raw.cpuPerMsgUs),
            serverBusy: round(summary.serverBusy, 2),
          };
        }
        peerCells.push(
          summary && raw
            ? `${fmt(summary.median, info.unit)} (${(summary.median / raw.median).toFixed(2)}×` +
              (info.cpu && Number.isFinite(summary.cpuPerMsgUs)
                ? `; cpu ${(summary.cpuPerMsgUs / raw.cpuPerMsgUs).toFixed(2)}×)`
                : ")")
            : "–",
        );
      }
      const rowNotes: string[] = [];
      for (const [name, s] of [["raw", raw], ["wsport", wsport]] as const) {
        if (s?.clientBound) rowNotes.push(`${name} client-bound in ${s.clientBound}/${s.n}`);
        for (const p of s?.problems ?? []) rowNotes.push(`${name}: ${p}`);
      }
      if (key === "idle" && raw && wsport) {
        const heap = (impl: Impl) => median(byImpl.get(impl)!.map((s) => s.extra?.heapPerConnection ?? NaN));
        rowNotes.unshift(
          `wsport − raw = ${Math.round(wsport.median - raw.median)} B/conn (JS heap: ${
            Math.round(heap("wsport") - heap("raw"))
          } B/conn)`,
        );
      }
      const cpu = info.cpu && raw && wsport
        ? {
          rawCpuPerMsgUs: round(raw.cpuPerMsgUs),
          wsportCpuPerMsgUs: round(wsport.cpuPerMsgUs),
          cpuRatio: round(wsport.cpuPerMsgUs / raw.cpuPerMsgUs),
        }
        : {};
      results.push({
        workload: info.workload,
        runtime,
        raw: round(raw?.median ?? NaN),
        wsport: round(wsport?.median ?? NaN),
        ratio: round(ratio),
        unit: info.unit,
        key,
        rawSpread: raw ? [round(raw.min), round(raw.max)] : null,
        wsportSpread: wsport ? [round(wsport.min), round(wsport.max)] : null,
        runs: Math.max(raw?.n ?? 0, wsport?.n ?? 0),
        ...cpu,
        ...(raw?.serverBusy !== undefined && Number.isFinite(raw.serverBusy)
          ? { serverBusy: { raw: round(raw.serverBusy, 2), wsport: round(wsport?.serverBusy ?? NaN, 2) } }
          : {}),
        clientBound: (raw?.clientBound ?? 0) + (wsport?.clientBound ?? 0) > 0,
        ...(Object.keys(peerResults).length ? { peers: peerResults } : {}),
        ...(rowNotes.length ? { notes: rowNotes } : {}),
      });
      tableRows.push([
        info.workload,
        runtime,
        info.unit,
        spread(raw, info.unit),
        spread(wsport, info.unit),
        Number.isFinite(ratio) ? `**${ratio.toFixed(2)}**` : "–",
        info.cpu && raw && wsport
          ? `${fmt(raw.cpuPerMsgUs, "µs")} / ${fmt(wsport.cpuPerMsgUs, "µs")}` +
            (Number.isFinite(wsport.cpuPerMsgUs / raw.cpuPerMsgUs)
              ? ` (${(wsport.cpuPerMsgUs / raw.cpuPerMsgUs).toFixed(2)}×)`
              : "")
          : "–",
        raw && Number.isFinite(raw.serverBusy) ? `${pct(raw.serverBusy)} / ${pct(wsport?.serverBusy)}` : "–",
        peerCells[0],
        ...(peers.length ? peerCells.slice(1) : []),
        rowNotes.join("; "),
      ]);
    }
  }

  const loadAfter = loadavg();
  const seconds = (performance.now() - started) / 1000;
  const about = {
    cores,
    model,
    deno: versions.deno,
    bun: versions.bun,
    node: versions.node,
    date: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    pinned,
    loadavg: { before: loadBefore, after: loadAfter },
    seconds: +seconds.toFixed(1),
  };

  const header = [
    "workload",
    "runtime",
    "unit",
    "raw median (min–max)",
    "wsport, default engine: median (min–max)",
    "wsport/raw",
    "server CPU µs per msg raw / wsport",
    "server busy raw / wsport",
    'wsport, Deno native engine, engine: "native" (×raw)',
    ...(peers.length ? ["crossws (×raw)", "Hono (×raw)"] : []),
    "notes",
  ];
  const markdown = [
    `## wsport vs raw runtimes (${about.mode} run, ${about.date.slice(0, 10)})`,
    "",
    `${cores} × ${model}; Deno ${versions.deno}, Bun ${versions.bun}, Node ${versions.node}; load average ${loadBefore} before, ${loadAfter} after; ` +
    `${reps} runs each, raw and wsport alternating; ${about.seconds} s.` +
    (pinned
      ? ` Servers pinned to core ${pinned.server}; ${machine.loadProcs} Deno load generator(s) on core(s) ${
        pinned.loadGenerators.join(", ")
      }.`
      : ""),
    "",
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...tableRows.map((row) => `| ${row.join(" | ")} |`),
    "",
    "Ratios are median wsport / median raw: above 1 is better for throughput, below 1 for latency and memory. " +
    '"client-bound": the server core was under 90 % busy, so the load generator, not the server, set the pace.',
    ...notes.map((note) => `- ${note}`),
  ].join("\n");

  return { markdown, json: { machine: about, results, notes } };
}
